import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import forge from 'node-forge';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CA_VALIDITY_DAYS, createCaCertificate, generateKeyPair } from '../../src/tls/certificates.js';
import { LeafCache } from '../../src/tls/leaf-cache.js';
import { LocalCa } from '../../src/tls/local-ca.js';
import { constraintsFor, describeConstraints, readNameConstraints, type NameScope } from '../../src/tls/name-constraints.js';
import { tempWorld } from '../helpers/temp-world.js';

const DAY_MS = 86_400_000;
const caKey = generateKeyPair();
const leafKey = generateKeyPair();
const BOUND: NameScope = { kind: 'hosts', hosts: ['api.example.com', '*.wild.example.org'] };
/** keyswap's CA for a config binding api.example.com and *.wild.example.org. */
const ca = new LocalCa(createCaCertificate(caKey, new Date(), constraintsFor(BOUND)), 'ca.pem', caKey);

/**
 * A loopback TLS server presenting a leaf that the CA's key signed for `name`: what anyone holding a copy of the
 * CA key could mint, since minting itself checks nothing.
 */
async function serveLeafFor(name: string, issuer: LocalCa = ca): Promise<number> {
  const leaf = issuer.mintLeaf(name, leafKey);
  const server = tls.createServer({ key: leafKey.privateKeyPem, cert: leaf.certPem }, (socket) => {
    socket.resume(); // read to the client's EOF, so the socket closes and server.close() can finish
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** Node's TLS client (OpenSSL) with the CA as its only trust anchor: 'ok' or the verification error. */
function nodeHandshake(port: number, servername: string, caPem: string = ca.certPem): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: caPem, minVersion: 'TLSv1.2' }, () => {
      socket.end();
      resolve('ok');
    });
    socket.once('error', (err: Error) => resolve(err.message));
  });
}

const hasCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;

/** curl with the CA as its only trust anchor (--cacert), the name pinned to the loopback server: exit code and stderr. */
function curlHandshake(port: number, name: string, caPem: string = ca.certPem): Promise<{ code: number | null; stderr: string }> {
  const { dir } = tempWorld('nc');
  writeFileSync(path.join(dir, 'ca.pem'), caPem);
  const args = ['-sS', '--max-time', '10', '--cacert', path.join(dir, 'ca.pem'), '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}/`];
  return new Promise((resolve) => {
    const p = spawn('curl', args, { env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('the CA is constrained to the hosts keyswap decrypts', () => {
  it.each([
    ['each bound name, sorted; every IP excluded', ['b.example.com', 'a.example.com'], ['a.example.com', 'b.example.com'], [], ['0.0.0.0/0', '::/0']],
    ['a wildcard binding permits its base domain', ['*.example.com'], ['example.com'], [], ['0.0.0.0/0', '::/0']],
    ['a name under another listed one adds nothing', ['api.example.com', '*.example.com', 'example.org'], ['example.com', 'example.org'], [], ['0.0.0.0/0', '::/0']],
    ['nothing bound permits only the reserved .invalid', [], ['invalid'], [], ['0.0.0.0/0', '::/0']],
    ['a bound IPv4 address is permitted alone; IPv6 stays excluded', ['10.1.2.3', 'api.example.com'], ['api.example.com'], ['10.1.2.3/32'], ['::/0']],
    ['a bound IPv6 address is permitted alone; IPv4 stays excluded', ['::1'], ['invalid'], ['::1/128'], ['0.0.0.0/0']],
  ])('%s', (_, hosts, dns, ips, excludedIps) => {
    const c = constraintsFor({ kind: 'hosts', hosts });
    expect(c).toEqual({
      kind: 'subtrees',
      permitted: [...dns.map((name) => ({ type: 'dns', name })), ...ips.map((cidr) => ({ type: 'ip', cidr }))],
      excluded: excludedIps.map((cidr) => ({ type: 'ip', cidr })),
    });
    // What is written into the certificate reads back the same.
    const pem = createCaCertificate(caKey, new Date(), c);
    expect(readNameConstraints(forge.pki.certificateFromPem(pem))).toEqual(c);
  });

  it('the extension is critical in the certificate, and tls_termination: all gives none', () => {
    const cert = forge.pki.certificateFromPem(ca.certPem);
    expect(cert.extensions.find((e: { id: string }) => e.id === '2.5.29.30')).toMatchObject({ critical: true });
    const open = createCaCertificate(caKey, new Date(), constraintsFor({ kind: 'any' }));
    expect(forge.pki.certificateFromPem(open).extensions.some((e: { id: string }) => e.id === '2.5.29.30')).toBe(false);
    expect(describeConstraints(readNameConstraints(forge.pki.certificateFromPem(open)))).toBe('none (its key can sign for any host)');
    expect(describeConstraints(ca.nameConstraints)).toBe('permitted api.example.com, wild.example.org; excluded 0.0.0.0/0, ::/0');
  });

  const open = new LocalCa(createCaCertificate(caKey, new Date(), { kind: 'none' }), 'open.pem', caKey);
  it.each([
    ['every bound host is covered', ca, BOUND, []],
    ['a host bound since is named', ca, { kind: 'hosts', hosts: ['api.example.com', 'new.example.net'] }, ['new.example.net']],
    ['a subdomain of a wildcard base is covered, a wildcard on another domain is not', ca, { kind: 'hosts', hosts: ['x.wild.example.org', '*.example.net'] }, ['*.example.net']],
    ['an IP address is never covered when none was bound', ca, { kind: 'hosts', hosts: ['127.0.0.1', '::1'] }, ['127.0.0.1', '::1']],
    ['tls_termination: all needs an unconstrained CA', ca, { kind: 'any' }, ['any host (tls_termination: all)']],
    ['an unconstrained CA (an older keyswap) covers any name or address', open, { kind: 'hosts', hosts: ['anything.example', '10.0.0.1'] }, []],
    ['an unconstrained CA covers tls_termination: all', open, { kind: 'any' }, []],
  ] as const)('coverage: %s', (_, issuer, scope, missing) => {
    expect(issuer.uncovered(scope as NameScope)).toEqual(missing);
  });
});

describe('a stolen CA key cannot impersonate unbound sites: OpenSSL enforces the constraints on the trust anchor', () => {
  it('Node: a leaf for a bound host (and under a bound wildcard) verifies; one for any other name or an IP does not', async () => {
    expect(await nodeHandshake(await serveLeafFor('api.example.com'), 'api.example.com')).toBe('ok');
    expect(await nodeHandshake(await serveLeafFor('*.wild.example.org'), 'a.wild.example.org')).toBe('ok');
    expect(await nodeHandshake(await serveLeafFor('evil.example.net'), 'evil.example.net')).toMatch(/permitted subtree violation/);
    expect(await nodeHandshake(await serveLeafFor('api.example.com.evil.net'), 'api.example.com.evil.net')).toMatch(/permitted subtree violation/);
    expect(await nodeHandshake(await serveLeafFor('127.0.0.1'), '')).toMatch(/excluded subtree violation/);
    // The same leaf under an unconstrained CA verifies: the failure above is the constraint, nothing else.
    const open = new LocalCa(createCaCertificate(caKey, new Date(), { kind: 'none' }), 'open.pem', caKey);
    expect(await nodeHandshake(await serveLeafFor('evil.example.net', open), 'evil.example.net', open.certPem)).toBe('ok');
  });

  it('Node: a bound IP address gets a leaf that verifies (its CN is not read as a DNS name)', async () => {
    const ipCa = new LocalCa(createCaCertificate(caKey, new Date(), constraintsFor({ kind: 'hosts', hosts: ['127.0.0.1'] })), 'ip.pem', caKey);
    expect(await nodeHandshake(await serveLeafFor('127.0.0.1', ipCa), '', ipCa.certPem)).toBe('ok');
    expect(await nodeHandshake(await serveLeafFor('api.example.com', ipCa), 'api.example.com', ipCa.certPem)).toMatch(/permitted subtree violation/);
  });

  it.skipIf(!hasCurl)('curl: the bound host succeeds, an unbound one fails verification on the constraint', async () => {
    const bound = await curlHandshake(await serveLeafFor('api.example.com'), 'api.example.com');
    expect(bound).toEqual({ code: 0, stderr: '' });
    const unbound = await curlHandshake(await serveLeafFor('evil.example.net'), 'evil.example.net');
    expect(unbound.code).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
    expect(unbound.stderr).toMatch(/permitted subtree violation/);
  });
});

describe('validity', () => {
  it(`a new CA is valid for at most ${CA_VALIDITY_DAYS} days`, () => {
    const now = Date.now();
    const cert = new X509Certificate(createCaCertificate(caKey, new Date(now), constraintsFor(BOUND)));
    expect(CA_VALIDITY_DAYS).toBeLessThanOrEqual(365);
    expect(Date.parse(cert.validTo)).toBeGreaterThan(now);
    expect(Date.parse(cert.validTo) - now).toBeLessThanOrEqual(CA_VALIDITY_DAYS * DAY_MS);
  });

  it('a leaf never outlives its CA: 90 days, or the CA expiry when that comes first', () => {
    const now = new Date();
    expect(Date.parse(new X509Certificate(ca.mintLeaf('api.example.com', leafKey, now).certPem).validTo)).toBe(Math.floor((now.getTime() + 90 * DAY_MS) / 1000) * 1000);
    // A CA made 360 days ago has 5 days left.
    const old = new LocalCa(createCaCertificate(caKey, new Date(now.getTime() - 360 * DAY_MS), constraintsFor(BOUND)), 'old.pem', caKey);
    const leaf = new X509Certificate(old.mintLeaf('api.example.com', leafKey, now).certPem);
    expect(Date.parse(leaf.validTo)).toBe(old.notAfter.getTime());
    expect(Date.parse(leaf.validTo)).toBe(Date.parse(new X509Certificate(old.certPem).validTo));
  });

  it('the leaf cache renews a leaf capped by its CA before it expires, not after 60 days', async () => {
    let nowMs = Date.now();
    const old = new LocalCa(createCaCertificate(caKey, new Date(nowMs - 360 * DAY_MS), constraintsFor(BOUND)), 'old.pem', caKey);
    const cache = new LeafCache(old, leafKey, { max: 10, now: () => nowMs });
    await cache.get('api.example.com');
    nowMs += 4 * DAY_MS; // 2/3 of the 5 days left has passed
    await cache.get('api.example.com');
    expect(cache.mintCount).toBe(2);
  });
});
