import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createCaCertificate, generateKeyPair, issuerOf, mintLeafCertificate } from '../../src/tls/certificates.js';
import { LeafCache } from '../../src/tls/leaf-cache.js';
import { LocalCa } from '../../src/tls/local-ca.js';
import { constraintsFor } from '../../src/tls/name-constraints.js';

const NOW = new Date();
const caKey = generateKeyPair();
// Constrained as keyswap's CA would be for these bindings (test/tls/name-constraints.test.ts proves what that does).
const caPem = createCaCertificate(caKey, NOW, constraintsFor({ kind: 'hosts', hosts: ['api.example.com', '*.example.com', '127.0.0.1'] }));
const leafKey = generateKeyPair();
const ca = new LocalCa(caPem, 'ca.pem', caKey);

/** A loopback TLS server whose certificates come from a LeafCache, as the proxy's MITM listener gets them. */
async function serveFrom(contextFor: (name: string) => Promise<tls.SecureContext>): Promise<number> {
  const server = tls.createServer({
    SNICallback: (name, cb) => { contextFor(name).then((ctx) => cb(null, ctx), (err: Error) => cb(err)); },
  }, (socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** A real TLS client trusting only keyswap's CA: resolves with the verification error code, or 'ok'. */
function handshake(port: number, servername: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: caPem, minVersion: 'TLSv1.2' }, () => {
      socket.end();
      resolve('ok');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function sanOf(pem: string): string | undefined {
  return new X509Certificate(pem).subjectAltName;
}

describe('certificates signed natively', () => {
  it('a leaf minted with native signing verifies against the CA and is accepted by a TLS client', async () => {
    const leaf = new X509Certificate(ca.mintLeaf('api.example.com', leafKey, NOW).certPem);
    const caCert = new X509Certificate(caPem);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.checkHost('api.example.com')).toBe('api.example.com');
    expect(leaf.checkPrivateKey(leafKey.privateKey)).toBe(true);
    // The algorithm named inside the TBSCertificate and outside it agree (a mismatch is rejected by OpenSSL).
    expect(forge.pki.certificateFromPem(leaf.toString()).signatureOid).toBe(forge.pki.oids.sha256WithRSAEncryption);
    const cache = new LeafCache(ca, leafKey, { max: 10 });
    const port = await serveFrom((name) => cache.get(name));
    expect(await handshake(port, 'api.example.com')).toBe('ok');
  });

  it('a leaf signed by another CA key does not verify against the CA (the signature is over these bytes)', () => {
    const other = issuerOf(caPem, generateKeyPair());
    const leaf = new X509Certificate(mintLeafCertificate('api.example.com', leafKey, other, NOW).certPem);
    expect(leaf.verify(new X509Certificate(caPem).publicKey)).toBe(false);
  });

  it('the CA certificate is self-signed natively, a CA with pathlen 0, and matches its key', () => {
    const cert = new X509Certificate(caPem);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.checkPrivateKey(caKey.privateKey)).toBe(true);
    expect(forge.pki.certificateFromPem(caPem).getExtension('basicConstraints')).toMatchObject({ cA: true, pathLenConstraint: 0 });
  });

  it('a wildcard leaf covers one label and no more', async () => {
    const leaf = new X509Certificate(ca.mintLeaf('*.example.com', leafKey, NOW).certPem);
    expect(sanOf(leaf.toString())).toBe('DNS:*.example.com');
    expect(leaf.verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(leaf.checkHost('a.example.com')).toBe('*.example.com');
    expect(leaf.checkHost('a.b.example.com')).toBeUndefined();
    expect(leaf.checkHost('example.com')).toBeUndefined();
    expect(leaf.checkHost('a.example.org')).toBeUndefined();
    // A real client, handed the wildcard leaf for whatever name it asked for, accepts it for one label only.
    const wildcardOnly = new LeafCache(ca, leafKey, { max: 10 });
    const port = await serveFrom(() => wildcardOnly.get('*.example.com'));
    expect(await handshake(port, 'a.example.com')).toBe('ok');
    expect(await handshake(port, 'a.b.example.com')).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(await handshake(port, 'example.com')).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('an IP address gets an IP SAN, not a DNS one', () => {
    const leaf = new X509Certificate(ca.mintLeaf('127.0.0.1', leafKey, NOW).certPem);
    expect(sanOf(leaf.toString())).toBe('IP Address:127.0.0.1');
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});

describe('LeafCache', () => {
  it('concurrent first handshakes for one name share one mint', async () => {
    const cache = new LeafCache(ca, leafKey, { max: 10 });
    const contexts = await Promise.all(Array.from({ length: 5 }, () => cache.get('api.example.com')));
    expect(new Set(contexts).size).toBe(1);
    expect(cache.mintCount).toBe(1);
  });

  it('distinct first mints take turns with other work: a callback queued behind a burst runs before the burst is done', async () => {
    const cache = new LeafCache(ca, leafKey, { max: 100 });
    const burst = Array.from({ length: 20 }, (_, i) => cache.get(`host${i}.example.com`));
    // Queued after the burst: it stands for an I/O callback (another agent's request, a health check).
    const mintsBeforeOtherWork = await new Promise<number>((resolve) => setImmediate(() => resolve(cache.mintCount)));
    expect(mintsBeforeOtherWork).toBeLessThan(20);
    await Promise.all(burst);
    expect(cache.mintCount).toBe(20);
  });
});
