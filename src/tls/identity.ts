import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';

/*
 * What lets an agent's launcher tell the real keyswap from a process squatting on its port while it is down (a
 * restart, a crash): an Ed25519 key only keyswap holds (state_dir, 0600), whose public half is beside it and, once
 * installed, published with the CA (`/etc/keyswap/identity.pub`). `keyswap run` sends a fresh nonce; keyswap signs it
 * with the address the connection came in on, so a squatter cannot relay the question to a keyswap elsewhere.
 */

export const IDENTITY_KEY_FILE = 'identity-key.pem';
export const IDENTITY_PUBLIC_FILE = 'identity.pub';
/** The systemd credential install makes (root's, loaded by the unit): the service user can use it, not replace it. */
export const IDENTITY_CREDENTIAL = 'keyswap-identity-key';

const CONTEXT = 'keyswap identity v1';

/** The signed text: the context, the nonce the client chose, the address (host:port) it connected to. */
function message(nonce: string, address: string): Buffer {
  return Buffer.from(`${CONTEXT}\n${nonce}\n${address}`, 'utf8');
}

export class Identity {
  readonly #key: KeyObject;

  private constructor(key: KeyObject) {
    this.#key = key;
  }

  /**
   * The systemd credential's identity when the unit loads one (read-only: never created), else the state
   * directory's, made on first use (the key 0600). Its public half is written 0644 in the state directory.
   */
  static async open(stateDir: string, credentialsDirectory?: string): Promise<Identity> {
    if (credentialsDirectory) {
      const credential = await readFile(path.join(credentialsDirectory, IDENTITY_CREDENTIAL), 'utf8').catch(() => null);
      if (credential !== null) {
        const key = createPrivateKey(credential);
        await writePublic(stateDir, key);
        return new Identity(key);
      }
    }
    const keyFile = path.join(stateDir, IDENTITY_KEY_FILE);
    const pem = await readFile(keyFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (pem !== null) {
      const key = createPrivateKey(pem);
      await writePublic(stateDir, key);
      return new Identity(key);
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    await writeFileAtomic(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
    await writePublic(stateDir, privateKey);
    return new Identity(privateKey);
  }

  /** The proof for a nonce asked on a connection to `address` (host:port, no brackets): base64. */
  prove(nonce: string, address: string): string {
    return sign(null, message(nonce, address), this.#key).toString('base64');
  }
}

async function writePublic(stateDir: string, key: KeyObject): Promise<void> {
  const file = path.join(stateDir, IDENTITY_PUBLIC_FILE);
  const pub = publicPemOf(key);
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current !== pub) await writeFileAtomic(file, pub, 0o644);
}

/** A new identity key (PKCS#8 PEM) and its public half (SPKI PEM), for install to keep as root's credential. */
export function newIdentityKey(): { readonly privatePem: string; readonly publicPem: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: publicPemOf(privateKey) };
}

/** The public half of an identity key given as PEM. */
export function identityPublicOf(privatePem: string): string {
  return publicPemOf(createPrivateKey(privatePem));
}

function publicPemOf(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** Whether `proof` is keyswap's answer to `nonce` on `address`, under the public key in `publicPem`. */
export function verifyIdentity(publicPem: string, nonce: string, address: string, proof: string): boolean {
  try {
    return verify(null, message(nonce, address), createPublicKey(publicPem), Buffer.from(proof, 'base64'));
  } catch {
    return false;
  }
}

/** Whether `pem` is one Ed25519 public key (what install publishes; nothing else is). */
export function isIdentityPublicKey(pem: string): boolean {
  try {
    return /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\r?\n?$/.test(pem) && createPublicKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}
