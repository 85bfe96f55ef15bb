import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import net from 'node:net';
import forge from 'node-forge';
import { nameConstraintsExtension, type NameConstraints } from './name-constraints.js';

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

/**
 * How long a new CA is valid: one year. A CA key lives on disk, readable by keyswap's user, for the whole period,
 * and an old copy (a backup, a stolen disk image) keeps working until it expires; there is no revocation for a
 * CA that agents trust per process. A year bounds that to one rotation cycle while keeping `keyswap ca rotate` a
 * yearly routine rather than a monthly chore: agents started by `keyswap run` follow a rotation on their own,
 * but every copied ca.pem (a container, another user's shell) has to be replaced by hand.
 */
export const CA_VALIDITY_DAYS = 365;
/** Leaves are short-lived and minted in memory; one never outlives its CA (mintLeafCertificate caps it). */
const LEAF_VALIDITY_DAYS = 90;
const DAY_MS = 24 * 3600_000;

/** A self-signed CA, CA:true pathlen 0, valid CA_VALIDITY_DAYS, with these name constraints (critical) if any. */
export function createCaCertificate(keys: KeyPair, now: Date, constraints: NameConstraints): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.forgePublic;
  cert.serialNumber = positiveSerial();
  // Backdated an hour for clocks slightly behind; the validity counts from now, so it is never longer than stated.
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS);
  const subject = [
    { name: 'commonName', value: `keyswap local CA ${randomBytes(4).toString('hex')}` },
    { name: 'organizationName', value: 'keyswap' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const constrained = nameConstraintsExtension(constraints);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    ...(constrained === null ? [] : [constrained]),
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
  /** The CA's own expiry: no leaf may outlive it. */
  readonly notAfter: Date;
}

export function issuerOf(caCertPem: string, caKey: KeyPair): Issuer {
  const caCert = forge.pki.certificateFromPem(caCertPem);
  return { subject: caCert.subject.attributes, keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(), key: caKey, notAfter: caCert.validity.notAfter };
}

/** When a leaf minted now expires: LEAF_VALIDITY_DAYS from now, or with its CA if that comes first. */
export function leafNotAfter(issuer: Pick<Issuer, 'notAfter'>, now: Date): Date {
  return new Date(Math.min(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS, issuer.notAfter.getTime()));
}

/**
 * A leaf for one host, signed by the CA: DNS or IP SAN, serverAuth only, ≤ 90 days and never past the CA. `*.example.com` gives a
 * wildcard leaf (SAN `*.example.com`), which TLS clients accept for exactly one label under example.com.
 * Synchronous CPU work, about a millisecond with native signing; callers mint bound hosts at start and cache the
 * result.
 */
export function mintLeafCertificate(host: string, leafKey: KeyPair, issuer: Issuer, now: Date): Leaf {
  const cert = forge.pki.createCertificate();
  cert.publicKey = leafKey.forgePublic;
  cert.serialNumber = positiveSerial();
  // A leaf past its CA's expiry would fail in every client on that day with no warning: cap it instead.
  const notAfter = leafNotAfter(issuer, now);
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = notAfter;
  const isIp = net.isIP(host) !== 0;
  // Clients match the SAN, never the CN, once a SAN is present (RFC 6125); the CN only names the leaf for people.
  // Not a bare address for an IP leaf: with no DNS SAN, OpenSSL checks a DNS-shaped CN (a dotted quad is one)
  // against the CA's DNS name constraints, and the leaf would fail for a bound IP.
  cert.setSubject([{ name: 'commonName', value: isIp ? `IP ${host}` : host }]);
  cert.setIssuer([...issuer.subject]);
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
