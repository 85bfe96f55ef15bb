import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import net from 'node:net';
import forge from 'node-forge';

declare module 'node-forge' {
  namespace pki {
    /** node-forge's own (x509.js), used by its cert.sign(); @types/node-forge leaves it out. */
    function getTBSCertificate(cert: Certificate): asn1.Asn1;
  }
}

/** An RSA key pair: node:crypto makes it and signs with it (native); node-forge only writes its public half into certificates. */
export interface KeyPair {
  readonly privateKeyPem: string;
  readonly privateKey: KeyObject;
  readonly forgePublic: forge.pki.rsa.PublicKey;
}

// RSA-2048: what every TLS client accepts, and what node-forge can write as a subject public key.
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return keyPairFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}

export function keyPairFromPem(privateKeyPem: string): KeyPair {
  const privateKey = createPrivateKey(privateKeyPem);
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKeyPem, privateKey, forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey };
}

/**
 * Signs `cert` with `key` as sha256WithRSAEncryption: node-forge lays out the TBSCertificate, node:crypto (OpenSSL)
 * computes the signature over its DER. node-forge's own cert.sign() does the RSA private-key operation in
 * JavaScript: a whole leaf took a median 27–31 ms on the event loop with it, 0.8–0.9 ms with this (measured here).
 */
function signNatively(cert: forge.pki.Certificate, key: KeyObject): void {
  const oid = forge.pki.oids.sha256WithRSAEncryption;
  if (oid === undefined) throw new Error('node-forge lacks the sha256WithRSAEncryption OID');
  // Order matters: the algorithm goes inside the TBSCertificate, so it is set before the bytes are taken.
  cert.signatureOid = oid;
  cert.siginfo.algorithmOid = oid;
  const tbs = forge.pki.getTBSCertificate(cert);
  // certificateToAsn1 reuses this exact TBSCertificate, so the bytes signed are the bytes written.
  cert.tbsCertificate = tbs;
  cert.signature = sign('sha256', Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary'), key).toString('binary');
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
  signNatively(cert, keys.privateKey);
  return forge.pki.certificateToPem(cert);
}

export interface Leaf { readonly certPem: string; readonly notAfter: Date }

/** What a leaf needs from its CA, parsed once rather than per leaf (parsing the CA PEM in forge was half a mint). */
export interface Issuer {
  readonly subject: readonly forge.pki.CertificateField[];
  /** The CA's subjectKeyIdentifier, as forge bytes: each leaf's authorityKeyIdentifier. */
  readonly keyIdentifier: string;
  readonly key: KeyPair;
}

export function issuerOf(caCertPem: string, caKey: KeyPair): Issuer {
  const caCert = forge.pki.certificateFromPem(caCertPem);
  return { subject: caCert.subject.attributes, keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(), key: caKey };
}

/**
 * A leaf for one host, signed by the CA: DNS or IP SAN, serverAuth only, ≤ 90 days. `*.example.com` gives a
 * wildcard leaf (SAN `*.example.com`), which TLS clients accept for exactly one label under example.com.
 * Synchronous CPU work, about a millisecond with native signing; callers mint bound hosts at start and cache the
 * result.
 */
export function mintLeafCertificate(host: string, leafKey: KeyPair, issuer: Issuer, now: Date, validityDays = 90): Leaf {
  const cert = forge.pki.createCertificate();
  cert.publicKey = leafKey.forgePublic;
  cert.serialNumber = positiveSerial();
  const notAfter = new Date(now.getTime() + validityDays * 24 * 3600_000);
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = notAfter;
  // Clients match the SAN, never the CN, once a SAN is present (RFC 6125); the CN only names the leaf for people.
  cert.setSubject([{ name: 'commonName', value: host }]);
  cert.setIssuer([...issuer.subject]);
  const isIp = net.isIP(host) !== 0;
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [isIp ? { type: 7, ip: host } : { type: 2, value: host }] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: issuer.keyIdentifier },
  ]);
  signNatively(cert, issuer.key.privateKey);
  return { certPem: forge.pki.certificateToPem(cert), notAfter };
}

export function fingerprintSha256(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}
