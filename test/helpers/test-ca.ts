import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A throwaway CA for test upstreams: independent of keyswap's own CA code, so a bug there cannot hide here. */
export interface TestCa {
  readonly certPem: string;
  issue(hosts: readonly string[]): { certPem: string; keyPem: string };
}

function rsaKeys(): { pem: string; priv: forge.pki.rsa.PrivateKey; pub: forge.pki.rsa.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    pem,
    priv: forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey,
    pub: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()) as forge.pki.rsa.PublicKey,
  };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 1;
  return b.toString('hex');
}

export function createTestCa(name = 'keyswap test upstream CA'): TestCa {
  const ca = rsaKeys();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = ca.pub;
  caCert.serialNumber = serial();
  caCert.validity.notBefore = new Date(Date.now() - 3600_000);
  caCert.validity.notAfter = new Date(Date.now() + 2 * 24 * 3600_000);
  caCert.setSubject([{ name: 'commonName', value: name }]);
  caCert.setIssuer([{ name: 'commonName', value: name }]);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  caCert.sign(ca.priv, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(caCert);
  return {
    certPem,
    issue(hosts) {
      const leaf = rsaKeys();
      const cert = forge.pki.createCertificate();
      cert.publicKey = leaf.pub;
      cert.serialNumber = serial();
      cert.validity.notBefore = new Date(Date.now() - 3600_000);
      cert.validity.notAfter = new Date(Date.now() + 2 * 24 * 3600_000);
      cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'localhost' }]);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: hosts.map((h) => (/^[0-9.]+$/.test(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
      ]);
      cert.sign(ca.priv, forge.md.sha256.create());
      return { certPem: forge.pki.certificateToPem(cert), keyPem: leaf.pem };
    },
  };
}

export const UPSTREAM_HOSTS = ['api.example.test', 'other.example.test', 'unbound.example.test', 'localhost', '127.0.0.1'];
