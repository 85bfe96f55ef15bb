import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import type { KmsKeySource } from './key-wrapper.js';

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

/**
 * Where the store's key-encryption key comes from. `file` names where a passphrase was read from, so a rekey can
 * put the new one there.
 */
export type KeySource = { readonly kind: 'keyfile'; readonly path: string } | { readonly kind: 'passphrase'; readonly passphrase: string; readonly file?: string } | KmsKeySource;

export const sealed = z.strictObject({ iv: z.string(), tag: z.string(), ct: z.string() });
export type Sealed = z.infer<typeof sealed>;

/**
 * scrypt parameters keyswap writes, and the only ones it reads: a store file names its own, and a store that
 * could name any N makes opening it allocate whatever the file says (N=2^40 crashes; a large valid N allocates
 * gigabytes). N=2^17, r=8, p=1 is OWASP's current minimum for scrypt (128 MiB, ~0.3 s here); 2^15 is what
 * keyswap wrote before, read only so an older store still opens (its next write moves it to 2^17).
 */
const SCRYPT_WRITTEN = { N: 2 ** 17, r: 8, p: 1 } as const;
const SCRYPT_READ: readonly { N: number; r: number; p: number }[] = [SCRYPT_WRITTEN, { N: 2 ** 15, r: 8, p: 1 }];

export const kekHeader = z.union([
  z.strictObject({ kind: z.literal('keyfile') }),
  z.strictObject({ kind: z.literal('passphrase'), salt: z.string(), scrypt: z.strictObject({ N: z.number(), r: z.number(), p: z.number() }) }),
  // Envelope encryption: the key itself, wrapped by the KMS `uri` names; only this form is ever written.
  z.strictObject({ kind: z.literal('kms'), uri: z.string(), wrapped: z.string() }),
]);
export type KekHeader = z.infer<typeof kekHeader>;

export function seal(key: Buffer, plain: Buffer, aad: string): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

/** The plaintext, or null when authentication fails (the caller names what failed; never the bytes). */
export function unseal(key: Buffer, s: Sealed, aad: string): Buffer | null {
  try {
    const iv = Buffer.from(s.iv, 'base64');
    const tag = Buffer.from(s.tag, 'base64');
    // Node accepts a truncated tag (down to 4 bytes) unless told its length: keyswap writes 12-byte IVs and 16-byte tags only.
    if (iv.length !== 12 || tag.length !== 16) return null;
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]);
  } catch {
    return null;
  }
}

/**
 * Refuses a file that group or others can read (a store or key readable by other users is already leaked), and
 * anything but a regular file (a FIFO put in its place would block the read, and a thread of the pool with it).
 */
export async function refuseLoose(file: string, what: string): Promise<void> {
  const st = await stat(file);
  if (!st.isFile()) throw new StoreError(`${what} ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) throw new StoreError(`${what} ${file} is readable by group or others; run: chmod 600 ${file}`);
}

async function readKeyFile(file: string, create: boolean): Promise<Buffer> {
  try {
    await refuseLoose(file, 'key file');
    const key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    if (key.length !== 32) throw new StoreError(`key file ${file} does not hold a 32-byte base64 key`);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!create) throw new StoreError(`key file ${file} does not exist; the store cannot be opened without it`);
    const key = randomBytes(32);
    await writeFileAtomic(file, `${key.toString('base64')}\n`, 0o600, { followOperatorLink: true });
    return key;
  }
}

/** Derived KEKs by passphrase source and header: serve re-reads the store on every change, and scrypt takes ~0.3 s. */
const derived = new WeakMap<KeySource, Map<string, Buffer>>();

export async function deriveKek(source: KeySource, header: KekHeader, create: boolean): Promise<Buffer> {
  if (header.kind === 'kms' || source.kind === 'kms') return unwrapKek(source, header);
  if (source.kind === 'keyfile') {
    if (header.kind !== 'keyfile') throw new StoreError('this store is protected by a passphrase; set KEYSWAP_PASSPHRASE_FILE or backend.config.passphrase_file');
    return readKeyFile(source.path, create);
  }
  if (header.kind !== 'passphrase') throw new StoreError('this store is protected by a key file, not a passphrase');
  const { N, r, p } = header.scrypt;
  if (!SCRYPT_READ.some((k) => k.N === N && k.r === r && k.p === p)) {
    throw new StoreError(`the store names scrypt parameters N=${N} r=${r} p=${p}, which keyswap never writes; the file was modified`);
  }
  const memo = derived.get(source) ?? new Map<string, Buffer>();
  derived.set(source, memo);
  const id = `${header.salt}:${N}:${r}:${p}`;
  const known = memo.get(id);
  if (known) return known;
  const kek = await new Promise<Buffer>((resolve, reject) => {
    // Async: in serve this runs on a store change, and a synchronous scrypt would stall every request for ~0.3 s.
    scrypt(source.passphrase, Buffer.from(header.salt, 'base64'), 32, { N, r, p, maxmem: 256 * N * r }, (err, key) => (err ? reject(err) : resolve(key)));
  });
  memo.set(id, kek);
  return kek;
}

export async function newKekHeader(source: KeySource): Promise<KekHeader> {
  if (source.kind === 'kms') {
    try {
      return { kind: 'kms', uri: source.uri, wrapped: (await source.fresh()).wrapped };
    } catch (err) {
      throw new StoreError(`cannot wrap a new store key with ${source.uri}: ${(err as Error).message}`);
    }
  }
  return source.kind === 'keyfile' ? { kind: 'keyfile' } : { kind: 'passphrase', salt: randomBytes(16).toString('base64'), scrypt: { ...SCRYPT_WRITTEN } };
}

async function unwrapKek(source: KeySource, header: KekHeader): Promise<Buffer> {
  if (header.kind !== 'kms') throw new StoreError(`this store is protected by a ${header.kind === 'keyfile' ? 'key file' : 'passphrase'}, not ${source.kind === 'kms' ? source.uri : 'a KMS'}; move it onto the KMS with: keyswap secret rekey --to-kms URI (run with the config that still names the ${header.kind === 'keyfile' ? 'key file' : 'passphrase'})`);
  if (source.kind !== 'kms') throw new StoreError(`this store's key is wrapped by ${header.uri}; set backend.config.key_kms: ${header.uri}`);
  if (source.uri !== header.uri) throw new StoreError(`this store's key is wrapped by ${header.uri}, but the config names ${source.uri}; name the one that wraps it, or move the store with: keyswap secret rekey --to-kms ${source.uri}`);
  try {
    return await source.open(header.wrapped);
  } catch (err) {
    throw new StoreError(`cannot unwrap the store key with ${header.uri}: ${(err as Error).message}`);
  }
}
