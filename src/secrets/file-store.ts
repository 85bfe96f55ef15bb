/**
 * The embedded encrypted store (the `file` backend). On-disk contract, version 2 — a JSON document:
 *
 *   { "format": "keyswap-store", "version": 2,
 *     "kek": { "kind": "keyfile" } | { "kind": "passphrase", "salt": b64, "scrypt": { "N", "r", "p" } },
 *     "wrapped_dek": { "iv", "tag", "ct" },   AES-256-GCM under the KEK, AAD "keyswap-store/v2/dek"
 *     "index": { "iv", "tag", "ct" },         under the DEK, AAD "keyswap-store/v2/index":
 *                                             { "revision": n, "entries": { NAME: updated_at } }
 *     "entries": { "NAME": { "iv", "tag", "ct" } } }   each under the DEK, AAD "keyswap-store/v2/entry/<NAME>"
 *
 * The AAD binds each ciphertext to its place: an entry cannot be moved to another name, nor swapped with the index
 * (entries live under `entry/`, so a secret named `index` has an AAD of its own). The encrypted index makes a
 * removed or added entry detectable without the key, and authenticates each entry's update time and the store's
 * revision, which every write increments. The last revision written is also kept in `<store>.revision`: a store
 * older than that (a copy put back in its place) is refused as a rollback. Version 1 stores (AAD
 * "keyswap-store/v1/…", update times in the clear, no revision) are read, and written back as version 2.
 *
 * Writes are atomic (writeFileAtomic) under an inter-process lock (file-lock.ts); no copy of an earlier version is
 * kept anywhere: a removed secret is gone once the write returns.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, unlink } from 'node:fs/promises';
import { z } from 'zod';
import { UnsafeWritePath, resolveWriteTarget, writeFileAtomic } from '../atomic-file.js';
import { acquireFileLock, LockBusy, LockDamaged } from '../file-lock.js';
import { deriveKek, kekHeader, newKekHeader, refuseLoose, seal, sealed, StoreError, unseal, type KeySource } from './store-crypto.js';

export { refuseLoose, StoreError, type KeySource } from './store-crypto.js';

export interface StoredEntry { readonly value: string; readonly updatedAt: string }
export interface StoreContents { readonly entries: ReadonlyMap<string, StoredEntry>; readonly revision: number }

const storeSchema = z.strictObject({
  format: z.literal('keyswap-store'),
  version: z.literal(2),
  kek: kekHeader,
  wrapped_dek: sealed,
  index: sealed,
  entries: z.record(z.string(), sealed),
});
const v1Schema = z.strictObject({
  format: z.literal('keyswap-store'),
  version: z.literal(1),
  kek: kekHeader,
  wrapped_dek: sealed,
  index: sealed,
  entries: z.record(z.string(), sealed.extend({ updated_at: z.string() })),
});
const indexSchema = z.strictObject({ revision: z.number().int().nonnegative(), entries: z.record(z.string(), z.string()) });
type StoreDoc = z.infer<typeof storeSchema>;

const AAD = { dek: 'keyswap-store/v2/dek', index: 'keyswap-store/v2/index', entry: (name: string) => `keyswap-store/v2/entry/${name}` };

/** Reads and authenticates the whole store. A missing store reads as empty, at the revision last recorded. */
export async function readStore(given: string, source: KeySource): Promise<StoreContents> {
  const file = await storePath(given);
  const recorded = await readRevisionMark(file);
  let text: string;
  try {
    await refuseLoose(file, 'store');
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: new Map(), revision: recorded ?? 0 };
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StoreError(`${file} is not a keyswap store (it is not JSON: damaged or replaced)`);
  }
  const v1 = v1Schema.safeParse(json);
  const contents = v1.success ? await openV1(file, source, v1.data) : await openV2(file, source, json);
  if (recorded === null && contents.revision > 0) {
    // Every write records its revision there: a written store without one had it removed (to roll it back).
    throw new StoreError(`${file} is at revision ${contents.revision}, but ${file}.revision, which every write updates, is missing: it was removed, perhaps to put an older copy in place (a rollback). If you restored this store on purpose, record its revision: echo ${contents.revision} > ${file}.revision`);
  }
  if (recorded !== null && contents.revision < recorded) {
    throw new StoreError(`${file} is at revision ${contents.revision}, but revision ${recorded} was written before (${file}.revision): an older copy was put in its place (a rollback). Put the newest copy back; if you restored a backup on purpose, remove ${file}.revision`);
  }
  return contents;
}

async function openV2(file: string, source: KeySource, json: unknown): Promise<StoreContents> {
  const parsed = storeSchema.safeParse(json);
  if (!parsed.success) throw new StoreError(`${file} is not a keyswap store (or is damaged): ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim());
  const doc = parsed.data;
  // Every IV keyswap writes is 12 bytes and every tag 16: anything else was edited (a cut tag is easier to forge).
  if (![doc.wrapped_dek, doc.index, ...Object.values(doc.entries)].every(wellFormed)) throw new StoreError(`${file} was modified: a ciphertext has an IV or tag of the wrong length`);
  const dek = unseal(await deriveKek(source, doc.kek, false), doc.wrapped_dek, AAD.dek);
  if (dek === null) throw new StoreError(cannotDecrypt(file, source));
  const index = parseIndex(file, unseal(dek, doc.index, AAD.index));
  const names = Object.keys(index.entries).sort();
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(doc.entries).sort())) {
    throw new StoreError(`${file}: store was modified: names do not match the encrypted index`);
  }
  const entries = new Map<string, StoredEntry>();
  for (const name of names) {
    const plain = unseal(dek, doc.entries[name] as z.infer<typeof sealed>, AAD.entry(name));
    if (plain === null) throw new StoreError(`${file}: store entry ${name} failed authentication (the file was modified)`);
    entries.set(name, { value: plain.toString('utf8'), updatedAt: index.entries[name] as string });
  }
  return { entries, revision: index.revision };
}

/** The index, or an error that says it was modified: never a parser message, which would quote its bytes. */
function parseIndex(file: string, plain: Buffer | null): z.infer<typeof indexSchema> {
  const failed = new StoreError(`${file}: the encrypted index failed authentication (the file was modified)`);
  if (plain === null) throw failed;
  try {
    return indexSchema.parse(JSON.parse(plain.toString('utf8')));
  } catch {
    throw failed;
  }
}

async function openV1(file: string, source: KeySource, doc: z.infer<typeof v1Schema>): Promise<StoreContents> {
  const dek = unseal(await deriveKek(source, doc.kek, false), doc.wrapped_dek, 'keyswap-store/v1/dek');
  if (dek === null) throw new StoreError(cannotDecrypt(file, source));
  const index = unseal(dek, doc.index, 'keyswap-store/v1/index');
  // In version 1 a secret named `index` shared the index's AAD, so the two blobs could be swapped without the key:
  // whatever this decrypts to is checked for shape, and its bytes never reach a message.
  let names: unknown;
  try {
    names = index === null ? null : JSON.parse(index.toString('utf8'));
  } catch {
    names = null;
  }
  const expected = Object.keys(doc.entries).sort();
  if (!Array.isArray(names) || JSON.stringify(names) !== JSON.stringify(expected)) {
    throw new StoreError(`${file}: store was modified: the encrypted index does not match its names`);
  }
  const entries = new Map<string, StoredEntry>();
  for (const name of expected) {
    const e = doc.entries[name] as z.infer<typeof v1Schema>['entries'][string];
    const plain = unseal(dek, e, `keyswap-store/v1/${name}`);
    if (plain === null) throw new StoreError(`${file}: store entry ${name} failed authentication (the file was modified)`);
    entries.set(name, { value: plain.toString('utf8'), updatedAt: e.updated_at });
  }
  return { entries, revision: 0 };
}

function wellFormed(s: z.infer<typeof sealed>): boolean {
  return Buffer.from(s.iv, 'base64').length === 12 && Buffer.from(s.tag, 'base64').length === 16;
}

/** The store as writers name it: through a symlink of the operator's, its target (atomic-file.ts). */
async function storePath(given: string): Promise<string> {
  try {
    return await resolveWriteTarget(given);
  } catch (err) {
    if (err instanceof UnsafeWritePath) throw new StoreError(err.message);
    throw err;
  }
}

function cannotDecrypt(file: string, source: KeySource): string {
  if (source.kind === 'keyfile' && existsSync(`${source.path}.next`)) {
    return `cannot decrypt ${file} with ${source.path}; a rekey was cut short and the store is probably under the new key at ${source.path}.next: keep that file (deleting it loses every secret), and move it to ${source.path} once you have checked`;
  }
  if (source.kind === 'kms') return `cannot decrypt ${file}: ${source.uri} unwrapped a key that does not open it (the wrapped key in the file was changed)`;
  const why = source.kind === 'keyfile' ? `wrong key file ${source.path}?` : 'wrong passphrase? (after a rekey cut short, the new one is in the file given to --new-passphrase-file)';
  return `cannot decrypt ${file} with this key (${why})`;
}

/**
 * The one way to change the store: under the lock, read it, let `change` edit the entries, and write it back as
 * the next revision when `change` returns true. Returns what `change` returned.
 */
export async function updateStore(given: string, source: KeySource, change: (entries: Map<string, StoredEntry>) => boolean, lockWaitMs = 5000): Promise<boolean> {
  const file = await storePath(given);
  return withStoreLock(file, async () => {
    const current = await readStore(file, source);
    const entries = new Map(current.entries);
    if (!change(entries)) return false;
    await writeStore(file, source, entries, current.revision + 1);
    return true;
  }, lockWaitMs);
}

/** Encrypts the entries under a fresh DEK (and, for a passphrase, a fresh salt) and replaces the store atomically. */
async function writeStore(file: string, source: KeySource, entries: ReadonlyMap<string, StoredEntry>, revision: number): Promise<void> {
  const header = await newKekHeader(source);
  const dek = randomBytes(32);
  const names = [...entries.keys()].sort();
  const index = { revision, entries: Object.fromEntries(names.map((n) => [n, (entries.get(n) as StoredEntry).updatedAt])) };
  const doc: StoreDoc = {
    format: 'keyswap-store',
    version: 2,
    kek: header,
    wrapped_dek: seal(await deriveKek(source, header, true), dek, AAD.dek),
    index: seal(dek, Buffer.from(JSON.stringify(index)), AAD.index),
    entries: Object.fromEntries(names.map((n) => [n, seal(dek, Buffer.from((entries.get(n) as StoredEntry).value, 'utf8'), AAD.entry(n))])),
  };
  try {
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 1)}\n`, 0o600);
    // Older keyswap kept the previous version beside the store; it still decrypted removed secrets.
    await unlink(`${file}.prev`).catch(() => {});
    await writeFileAtomic(`${file}.revision`, `${revision}\n`, 0o600);
  } catch (err) {
    if (err instanceof UnsafeWritePath) throw new StoreError(err.message);
    throw err;
  }
}

/** The revision last written next to the store, or null when there is none (a new store, or one from before revisions). */
async function readRevisionMark(file: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(`${file}.revision`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const n = /^\d{1,15}$/.test(text.trim()) ? Number(text.trim()) : -1;
  if (n < 0) throw new StoreError(`${file}.revision does not hold a revision number; it was modified`);
  return n;
}

/** Runs `fn` holding the store's lock (waiting up to `waitMs` for another writer); see file-lock.ts. */
export async function withStoreLock<T>(file: string, fn: () => Promise<T>, waitMs = 5000): Promise<T> {
  let release: () => Promise<void>;
  try {
    release = await acquireFileLock(file, { waitMs });
  } catch (err) {
    if (err instanceof LockBusy) throw new StoreError(`${err.message}; try again when it has finished${err.elsewhere ? ` (if no keyswap runs there any more, remove ${file}.lock.d)` : ''}`);
    if (err instanceof LockDamaged) throw new StoreError(err.message);
    throw err;
  }
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * Replaces the key material itself, so the old key opens nothing written afterwards: a key file gets 32 new random
 * bytes; a passphrase store needs `next`, the new passphrase, which is then written where the old one was read
 * (a passphrase file). Every entry is re-encrypted under a fresh DEK.
 */
export async function rekeyStore(given: string, source: KeySource, next: KeySource | null, onProgress: (done: number, total: number) => void): Promise<number> {
  const file = await storePath(given);
  return withStoreLock(file, async () => {
    const current = await readStore(file, source);
    const entries = current.entries;
    try {
      if (next !== null && next.kind !== 'passphrase') {
        // A move onto a KMS, or back onto a new key file (the CLI refuses one that exists): the store is written under it alone.
        await writeStore(file, next, entries, current.revision + 1);
      } else if (source.kind === 'kms') {
        // Every write wraps a new key: the old wrapped key opens nothing written afterwards.
        await writeStore(file, source, entries, current.revision + 1);
      } else if (source.kind === 'keyfile') {
        // A symlinked key file (kept on another volume) is rekeyed where it really is.
        const keyPath = await resolveWriteTarget(source.path);
        const staged = `${keyPath}.next`;
        await writeFileAtomic(staged, `${randomBytes(32).toString('base64')}\n`, 0o600);
        // Order matters: the store is written under the new key before the key file is swapped in; a crash in
        // between leaves the new key at `.next`, named by the error the next open gives.
        await writeStore(file, { kind: 'keyfile', path: staged }, entries, current.revision + 1);
        await rename(staged, keyPath);
      } else {
        if (next?.kind !== 'passphrase') throw new StoreError('this store is protected by a passphrase: give the new one with --new-passphrase-file FILE (a rekey under the same passphrase would leave it opening every copy)');
        if (next.passphrase === source.passphrase) throw new StoreError('the new passphrase is the old one; a rekey needs a different passphrase');
        await writeStore(file, next, entries, current.revision + 1);
        if (source.file !== undefined) {
          await writeFileAtomic(source.file, `${next.passphrase}\n`, 0o600, { followOperatorLink: true }).catch((err: NodeJS.ErrnoException) => {
            throw new StoreError(`${file} is now under the new passphrase, but ${source.file} could not be updated (${err.code ?? err.message}); put the new passphrase there yourself`);
          });
        }
      }
    } catch (err) {
      if (err instanceof UnsafeWritePath) throw new StoreError(err.message);
      throw err;
    }
    let i = 0;
    for (const _ of entries) onProgress(++i, entries.size);
    return entries.size;
  });
}
