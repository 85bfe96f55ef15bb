import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BackendSpec } from '../config/index.js';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable, SecretNotFound } from './errors.js';
import { readStore, refuseLoose, StoreError, type KeySource, type StoredEntry } from './file-store.js';
import { Secret } from './secret.js';

type FileSpec = Extract<BackendSpec, { type: 'file' }>;
type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where the store's key comes from, first match wins: backend.config.key_file, backend.config.passphrase_file,
 * $KEYSWAP_PASSPHRASE_FILE, the systemd credential `keyswap-store-key`, then `store.key` beside the store.
 */
export async function resolveKeySource(spec: FileSpec, env: Env): Promise<KeySource> {
  if (spec.keyFile) return { kind: 'keyfile', path: spec.keyFile };
  const passphraseFile = spec.passphraseFile ?? env.KEYSWAP_PASSPHRASE_FILE;
  if (passphraseFile) {
    await refuseLoose(passphraseFile, 'passphrase file');
    const passphrase = (await readFile(passphraseFile, 'utf8')).replace(/\r?\n$/, '');
    if (passphrase.length < 12) throw new StoreError(`passphrase file ${passphraseFile}: the passphrase must be at least 12 characters`);
    return { kind: 'passphrase', passphrase };
  }
  if (env.CREDENTIALS_DIRECTORY) {
    const credential = path.join(env.CREDENTIALS_DIRECTORY, 'keyswap-store-key');
    if (await exists(credential)) return { kind: 'keyfile', path: credential };
  }
  return { kind: 'keyfile', path: path.join(path.dirname(spec.path), 'store.key') };
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
  #entries = new Map<string, StoredEntry>();

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

  async list(): Promise<readonly string[]> {
    await this.#refresh();
    return [...this.#entries.keys()];
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
    this.#entries = await readStore(this.#file, this.#source);
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
