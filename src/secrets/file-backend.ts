import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BackendSpec } from '../config/index.js';
import type { FetchContext, SecretsBackend, StoreOptions } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable, SecretNotFound } from './errors.js';
import { readStore, refuseLoose, StoreError, updateStore, type KeySource, type StoredEntry } from './file-store.js';
import { openKmsKeySource } from './open-key-wrapper.js';
import { Secret } from './secret.js';

type FileSpec = Extract<BackendSpec, { type: 'file' }>;
type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where the store's key comes from, first match wins: backend.config.key_kms (a KMS unwraps it), key_file, backend.config.passphrase_file,
 * $KEYSWAP_PASSPHRASE_FILE, the systemd credential `keyswap-store-key`, then `store.key` beside the store.
 */
export async function resolveKeySource(spec: FileSpec, env: Env): Promise<KeySource> {
  if (spec.keyKms !== null) return openKmsKeySource(spec.keyKms, spec.kms, env);
  if (spec.keyFile) return { kind: 'keyfile', path: spec.keyFile };
  const passphraseFile = spec.passphraseFile ?? env.KEYSWAP_PASSPHRASE_FILE;
  if (passphraseFile) return readPassphraseFile(passphraseFile);
  if (env.CREDENTIALS_DIRECTORY) {
    const credential = path.join(env.CREDENTIALS_DIRECTORY, 'keyswap-store-key');
    if (await exists(credential)) return { kind: 'keyfile', path: credential };
  }
  return { kind: 'keyfile', path: path.join(path.dirname(spec.path), 'store.key') };
}

/** A passphrase source from a 0600 file: its first line, at least 12 characters. */
export async function readPassphraseFile(file: string): Promise<KeySource> {
  await refuseLoose(file, 'passphrase file');
  const passphrase = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  if (passphrase.length < 12) throw new StoreError(`passphrase file ${file}: the passphrase must be at least 12 characters`);
  return { kind: 'passphrase', passphrase, file };
}

/**
 * The embedded default backend. The decrypted store is kept in memory and re-read when the file changes (its
 * mtime or size), so `keyswap secret set` on a running proxy is seen by the next cache miss.
 */
export class FileBackend implements SecretsBackend {
  readonly type = 'file';
  readonly #file: string;
  readonly #source: KeySource;
  #stamp = '';
  #entries: ReadonlyMap<string, StoredEntry> = new Map();
  /** The highest revision this process has read: a store put back to an older one while we run is refused. */
  #revision = 0;

  private constructor(file: string, source: KeySource) {
    this.#file = file;
    this.#source = source;
  }

  static async open(spec: FileSpec, env: Env): Promise<FileBackend> {
    try {
      const backend = new FileBackend(spec.path, await resolveKeySource(spec, env));
      await backend.#refresh();
      return backend;
    } catch (err) {
      if (err instanceof StoreError) throw new BackendConfigError(`file backend: ${err.message}`);
      throw err;
    }
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    try {
      await this.#refresh();
    } catch (err) {
      throw new BackendUnavailable('file', err instanceof StoreError ? err.message : 'the store cannot be read', { cause: err });
    }
    const entry = this.#entries.get(name);
    if (entry === undefined) throw new SecretNotFound(name);
    return new Secret(entry.value);
  }

  /** One locked read-modify-write of the store (the same writer as `keyswap secret set`). */
  async store(name: string, value: Secret, opts: StoreOptions = {}): Promise<void> {
    try {
      await updateStore(this.#file, this.#source, (entries) => {
        entries.set(name, { value: value.reveal(), updatedAt: new Date().toISOString() });
        return true;
      }, opts.lockWaitMs);
      await this.#refresh();
    } catch (err) {
      throw new BackendUnavailable('file', err instanceof StoreError ? err.message : 'the store cannot be written', { cause: err });
    }
  }

  async list(): Promise<readonly string[]> {
    await this.#refresh();
    return [...this.#entries.keys()];
  }

  async close(): Promise<void> {
    if (this.#source.kind === 'kms') await this.#source.close();
  }

  async #refresh(): Promise<void> {
    let stamp = 'absent';
    try {
      const s = await stat(this.#file);
      stamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (stamp === this.#stamp) return;
    const contents = await readStore(this.#file, this.#source);
    if (contents.revision < this.#revision) {
      throw new StoreError(`${this.#file} went back from revision ${this.#revision} to ${contents.revision} while keyswap ran: an older copy was put in its place (a rollback)`);
    }
    this.#entries = contents.entries;
    this.#revision = contents.revision;
    this.#stamp = stamp;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
