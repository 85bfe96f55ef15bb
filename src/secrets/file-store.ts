/**
 * The embedded encrypted store (the `file` backend). On-disk contract, version 1 — a JSON document:
 *
 *   { "format": "keyswap-store", "version": 1,
 *     "kek": { "kind": "keyfile" } | { "kind": "passphrase", "salt": b64, "scrypt": { "N", "r", "p" } },
 *     "wrapped_dek": { "iv", "tag", "ct" },          AES-256-GCM under the KEK, AAD "keyswap-store/v1/dek"
 *     "index": { "iv", "tag", "ct" },                the sorted names, under the DEK, AAD "keyswap-store/v1/index"
 *     "entries": { "NAME": { "iv", "tag", "ct", "updated_at" } } }   each under the DEK, AAD "keyswap-store/v1/<NAME>"
 *
 * The AAD binds each ciphertext to its name (an entry cannot be moved to another name) and the encrypted index
 * makes a removed or added entry detectable without the key. The KEK is 32 random bytes from a 0600 key file, or
 * scrypt of a passphrase. Writes are atomic: temp file (0600, O_EXCL) → fsync → the old store kept as `.prev` →
 * rename → fsync of the directory; a lock file serialises writers across processes.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export type KeySource = { readonly kind: 'keyfile'; readonly path: string } | { readonly kind: 'passphrase'; readonly passphrase: string };

export interface StoredEntry { readonly value: string; readonly updatedAt: string }

const SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const sealed = z.strictObject({ iv: z.string(), tag: z.string(), ct: z.string() });
const storeSchema = z.strictObject({
  format: z.literal('keyswap-store'),
  version: z.literal(1),
  kek: z.union([
    z.strictObject({ kind: z.literal('keyfile') }),
    z.strictObject({ kind: z.literal('passphrase'), salt: z.string(), scrypt: z.strictObject({ N: z.number(), r: z.number(), p: z.number() }) }),
  ]),
  wrapped_dek: sealed,
  index: sealed,
  entries: z.record(z.string(), sealed.extend({ updated_at: z.string() })),
});
type StoreDoc = z.infer<typeof storeSchema>;
type Sealed = z.infer<typeof sealed>;

function seal(key: Buffer, plain: Buffer, aad: string): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

function open_(key: Buffer, s: Sealed, aad: string): Buffer | null {
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]);
  } catch {
    return null; // authentication failed: the caller names what failed
  }
}

/** Refuses a file that group or others can read: a store or key readable by other users is already leaked. */
export async function refuseLoose(file: string, what: string): Promise<void> {
  const mode = (await stat(file)).mode;
  if ((mode & 0o077) !== 0) throw new StoreError(`${what} ${file} is readable by group or others; run: chmod 600 ${file}`);
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
    await writeFileAtomic(file, `${key.toString('base64')}\n`, 0o600);
    return key;
  }
}

async function deriveKek(source: KeySource, kek: StoreDoc['kek'], create: boolean): Promise<Buffer> {
  if (source.kind === 'keyfile') {
    if (kek.kind !== 'keyfile') throw new StoreError('this store is protected by a passphrase; set KEYSWAP_PASSPHRASE_FILE or backend.config.passphrase_file');
    return readKeyFile(source.path, create);
  }
  if (kek.kind !== 'passphrase') throw new StoreError('this store is protected by a key file, not a passphrase');
  return scryptSync(source.passphrase, Buffer.from(kek.salt, 'base64'), 32, { ...kek.scrypt, maxmem: 128 * kek.scrypt.N * kek.scrypt.r * 2 });
}

function newKekHeader(source: KeySource): StoreDoc['kek'] {
  return source.kind === 'keyfile' ? { kind: 'keyfile' } : { kind: 'passphrase', salt: randomBytes(16).toString('base64'), scrypt: { ...SCRYPT } };
}

/** Reads and authenticates the whole store. A missing store reads as empty. */
export async function readStore(file: string, source: KeySource): Promise<Map<string, StoredEntry>> {
  let text: string;
  try {
    await refuseLoose(file, 'store');
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  let doc: StoreDoc;
  try {
    doc = storeSchema.parse(JSON.parse(text));
  } catch {
    throw new StoreError(`${file} is not a keyswap store (or is damaged); the previous version is kept at ${file}.prev`);
  }
  const kek = await deriveKek(source, doc.kek, false);
  const dek = open_(kek, doc.wrapped_dek, 'keyswap-store/v1/dek');
  if (dek === null) throw new StoreError(`cannot decrypt ${file} with this key (wrong key file or passphrase)`);
  const index = open_(dek, doc.index, 'keyswap-store/v1/index');
  if (index === null) throw new StoreError(`${file}: the encrypted index failed authentication (the file was modified)`);
  const names = JSON.parse(index.toString('utf8')) as string[];
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(doc.entries).sort())) {
    throw new StoreError(`${file}: store was modified: names do not match the encrypted index`);
  }
  const out = new Map<string, StoredEntry>();
  for (const [name, e] of Object.entries(doc.entries)) {
    const plain = open_(dek, e, `keyswap-store/v1/${name}`);
    if (plain === null) throw new StoreError(`${file}: store entry ${name} failed authentication (the file was modified)`);
    out.set(name, { value: plain.toString('utf8'), updatedAt: e.updated_at });
  }
  return out;
}

/** Encrypts the entries under a fresh DEK (and, for a passphrase, a fresh salt) and replaces the store atomically. */
export async function writeStore(file: string, source: KeySource, entries: ReadonlyMap<string, StoredEntry>): Promise<void> {
  const kekHeader = newKekHeader(source);
  const kek = await deriveKek(source, kekHeader, true);
  const dek = randomBytes(32);
  const doc: StoreDoc = {
    format: 'keyswap-store',
    version: 1,
    kek: kekHeader,
    wrapped_dek: seal(kek, dek, 'keyswap-store/v1/dek'),
    index: seal(dek, Buffer.from(JSON.stringify([...entries.keys()].sort())), 'keyswap-store/v1/index'),
    entries: Object.fromEntries([...entries].map(([name, e]) => [name, { ...seal(dek, Buffer.from(e.value, 'utf8'), `keyswap-store/v1/${name}`), updated_at: e.updatedAt }])),
  };
  try {
    await copyFile(file, `${file}.prev`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 1)}\n`, 0o600);
}

/** Runs `fn` holding the store's lock file; a lock left by a dead process is taken over. */
export async function withStoreLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await readFile(lock, 'utf8').catch(() => '0'));
      if (!isAlive(holder)) {
        await unlink(lock).catch(() => {});
        continue;
      }
      if (attempt >= 100) throw new StoreError(`${file} is locked by process ${holder}; try again when it has finished`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Replaces the KEK material itself: a new key file (or salt) and a new DEK; the old key can no longer decrypt. */
export async function rekeyStore(file: string, source: KeySource, onProgress: (done: number, total: number) => void): Promise<number> {
  return withStoreLock(file, async () => {
    const entries = await readStore(file, source);
    if (source.kind === 'keyfile') {
      const fresh = randomBytes(32);
      const next = `${source.path}.next`;
      await writeFileAtomic(next, `${fresh.toString('base64')}\n`, 0o600);
      // Order matters: the store is written under the new key before the key file is swapped in; a crash in
      // between leaves the new key at `.next`, named by the error the next open gives.
      await writeStore(file, { kind: 'keyfile', path: next }, entries);
      await rename(next, source.path);
    } else {
      await writeStore(file, source, entries);
    }
    // The previous version was encrypted under the old key: it must not outlive the rekey.
    await unlink(`${file}.prev`).catch(() => {});
    let i = 0;
    for (const _ of entries) onProgress(++i, entries.size);
    return entries.size;
  });
}
