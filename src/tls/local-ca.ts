import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import forge from 'node-forge';
import { writeFileAtomic } from '../atomic-file.js';
import { createCaCertificate, fingerprintSha256, generateKeyPair, issuerOf, keyPairFromPem, leafNotAfter, mintLeafCertificate, type Issuer, type KeyPair, type Leaf } from './certificates.js';
import { TlsStateError } from './errors.js';
import { constraintsFor, readNameConstraints, uncoveredHosts, type NameConstraints, type NameScope } from './name-constraints.js';

/** keyswap's own CA, loaded from (or created in) the state directory. Its private key never leaves this object. */
export class LocalCa {
  readonly certPem: string;
  readonly certPath: string;
  readonly fingerprintSha256: string;
  /** What its key may sign for, as the certificate says (agents' TLS libraries enforce it, not keyswap). */
  readonly nameConstraints: NameConstraints;
  readonly #issuer: Issuer;

  /** Throws if the certificate or its NameConstraints cannot be parsed. */
  constructor(certPem: string, certPath: string, key: KeyPair) {
    this.certPem = certPem;
    this.certPath = certPath;
    this.fingerprintSha256 = fingerprintSha256(certPem);
    this.#issuer = issuerOf(certPem, key);
    this.nameConstraints = readCaConstraints(certPem);
  }

  get notAfter(): Date { return this.#issuer.notAfter; }

  /** The hosts in `scope` this CA cannot sign for: a leaf for one would fail in every agent (a binding added since). */
  uncovered(scope: NameScope): string[] {
    return uncoveredHosts(this.nameConstraints, scope);
  }

  /** When a leaf minted at `now` expires: its own lifetime, capped at the CA's. */
  leafNotAfter(now: Date): Date {
    return leafNotAfter(this.#issuer, now);
  }

  mintLeaf(host: string, leafKey: KeyPair, now: Date = new Date()): Leaf {
    return mintLeafCertificate(host, leafKey, this.#issuer, now);
  }
}

/** The NameConstraints of a CA certificate in PEM. Throws if they cannot be read. */
export function readCaConstraints(certPem: string): NameConstraints {
  return readNameConstraints(forge.pki.certificateFromPem(certPem));
}

/**
 * How openCa may find the CA: `create` makes a missing one, constrained to `scope` (the hosts the config
 * decrypts); without it a missing CA is an error. An existing CA is loaded as it is: whether it covers the
 * config is the caller's question (LocalCa.uncovered), since `ca show` and `doctor` must still open one that
 * does not.
 */
export type OpenCaOptions = { readonly create: true; readonly scope: NameScope } | { readonly create: false };

/**
 * Opens `<stateDir>/ca.pem` + `ca-key.pem`, creating them on first use: the directory 0700, the key 0600 written
 * atomically, so the CA key is never readable by anyone but keyswap's user (K7). Refuses unsafe existing state
 * with the command that fixes it.
 */
export async function openCa(stateDir: string, opts: OpenCaOptions): Promise<LocalCa> {
  const certPath = path.join(stateDir, 'ca.pem');
  const keyPath = path.join(stateDir, 'ca-key.pem');
  await ensureStateDir(stateDir, opts.create);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem !== null && keyPem !== null) {
    await refuseLoosePermissions(keyPath);
    let ca: LocalCa;
    let matches: boolean;
    try {
      ca = new LocalCa(certPem, certPath, keyPairFromPem(keyPem));
      matches = new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
    } catch (err) {
      throw new TlsStateError(`${certPath} / ${keyPath}: cannot be parsed as a certificate (with its name constraints) and RSA key (${(err as Error).message}); run keyswap ca rotate to make a new CA`);
    }
    // Leaves signed by a key the certificate does not name fail in every agent: say so here, once.
    if (!matches) throw new TlsStateError(`${certPath} and ${keyPath} do not belong together (a rotation cut short?); run keyswap ca rotate to make a new pair`);
    return ca;
  }
  if (certPem !== null || keyPem !== null) {
    throw new TlsStateError(`${stateDir}: found only one of ca.pem and ca-key.pem; restore the other, or run keyswap ca rotate to make a new CA`);
  }
  if (!opts.create) throw new TlsStateError(`${stateDir}: no CA yet; keyswap serve creates one at its first start`);
  return createCa(stateDir, opts.scope);
}

/**
 * A new CA key and certificate, constrained to `scope`, replace the old ones in place; the old key is
 * overwritten, never kept aside (a rotation usually follows a suspected leak). The key is written first: a
 * rotation cut short leaves a pair that openCa() reports as mismatched, never one that silently signs with the
 * wrong key.
 */
export async function rotateCa(stateDir: string, scope: NameScope): Promise<LocalCa> {
  await ensureStateDir(stateDir, false);
  return createCa(stateDir, scope);
}

async function createCa(stateDir: string, scope: NameScope): Promise<LocalCa> {
  const certPath = path.join(stateDir, 'ca.pem');
  const key = generateKeyPair();
  const pem = createCaCertificate(key, new Date(), constraintsFor(scope));
  await writeFileAtomic(path.join(stateDir, 'ca-key.pem'), key.privateKeyPem, 0o600);
  await writeFileAtomic(certPath, pem, 0o644);
  await writeTrustBundle(stateDir, pem);
  return new LocalCa(pem, certPath, key);
}

/** `<stateDir>/ca-bundle.pem`: the system roots plus keyswap's CA, for clients whose CA variable replaces their whole trust store. */
export async function writeTrustBundle(stateDir: string, caPem: string): Promise<string> {
  const file = path.join(stateDir, 'ca-bundle.pem');
  await writeFileAtomic(file, `${rootCertificates.join('\n')}\n${caPem}`, 0o644);
  return file;
}

async function ensureStateDir(dir: string, create: boolean): Promise<void> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new TlsStateError(`${dir}: state_dir is not a directory`);
    if ((s.mode & 0o077) !== 0) throw new TlsStateError(`${dir}: state_dir is accessible by group or others; run: chmod 700 ${dir}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!create) throw new TlsStateError(`${dir}: state_dir does not exist`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700); // the umask may have narrowed it further, never widened; make it exact
  }
}

async function refuseLoosePermissions(keyPath: string): Promise<void> {
  const s = await stat(keyPath);
  if ((s.mode & 0o077) !== 0) throw new TlsStateError(`${keyPath}: the CA private key is readable by group or others; run: chmod 600 ${keyPath}`);
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TlsStateError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
