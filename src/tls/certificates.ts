import { createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import net from 'node:net';
import forge from 'node-forge';

/** An RSA key pair: node:crypto makes it (fast, native); node-forge only signs with it. */
export interface KeyPair {
  readonly privateKeyPem: string;
  readonly forgePrivate: forge.pki.rsa.PrivateKey;
  readonly forgePublic: forge.pki.rsa.PublicKey;
}

// node-forge signs only RSA, so the CA and the one process-wide leaf key are RSA-2048.
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return keyPairFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}

export function keyPairFromPem(privateKeyPem: string): KeyPair {
  const forgePrivate = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const publicPem = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKeyPem, forgePrivate, forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey };
}

/** A positive 128-bit serial: the top bit clear so DER never reads it as negative, never zero. */
export function positiveSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

export function createCaCertificate(keys: KeyPair, now: Date): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.forgePublic;
  cert.serialNumber = positiveSerial();
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600_000);
  const subject = [
    { name: 'commonName', value: `keyswap local CA ${randomBytes(4).toString('hex')}` },
    { name: 'organizationName', value: 'keyswap' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgePrivate, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

export interface Leaf { readonly certPem: string; readonly notAfter: Date }

/**
 * A leaf for one host, signed by the CA: DNS or IP SAN, serverAuth only, ≤ 90 days. Synchronous CPU work
 * (an RSA-2048 signature in JS, a few ms); callers mint bound hosts at start and cache the result.
 */
export function mintLeafCertificate(host: string, leafKey: KeyPair, caCertPem: string, caKey: KeyPair, now: Date, validityDays = 90): Leaf {
  const caCert = forge.pki.certificateFromPem(caCertPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = leafKey.forgePublic;
  cert.serialNumber = positiveSerial();
  const notAfter = new Date(now.getTime() + validityDays * 24 * 3600_000);
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: host }]);
  cert.setIssuer(caCert.subject.attributes);
  const isIp = net.isIP(host) !== 0;
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [isIp ? { type: 7, ip: host } : { type: 2, value: host }] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey.forgePrivate, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), notAfter };
}

export function fingerprintSha256(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
