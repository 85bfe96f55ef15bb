import { constants } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable, SecretNotFound } from './errors.js';
import { Secret } from './secret.js';

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * A directory with one file per secret: a mounted Kubernetes Secret, External Secrets Operator's target, the Secrets
 * Store CSI driver, Vault Agent templates. Read at each fetch (the cache decides how often), so a rotation needs no
 * restart. Kubernetes swaps a whole new set in at once: `NAME` is a link to `..data/NAME` and `..data` a link to a
 * timestamped directory that is replaced by one rename; a read that lands between the swap and the old directory's
 * removal is tried once more. A link that leads out of the directory, or a file group or others may read, is refused.
 */
export class FilesBackend implements SecretsBackend {
  readonly type = 'files';
  readonly #dir: string;
  readonly #root: string;

  private constructor(dir: string, root: string) {
    this.#dir = dir;
    this.#root = root;
  }

  static async open(directory: string): Promise<FilesBackend> {
    try {
      const root = await realpath(directory);
      if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
      return new FilesBackend(directory, root);
    } catch {
      throw new BackendConfigError(`files backend: ${directory} is not a readable directory (backend.config.directory)`);
    }
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    // A name is a file name here: never let one walk out of the directory, or name Kubernetes' own `..data`.
    if (!NAME.test(name)) throw new SecretNotFound(name);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#read(name);
      } catch (err) {
        if (err instanceof BackendUnavailable || err instanceof SecretNotFound) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt === 0) continue; // a swap removed the directory the link led to: once more
        if (code === 'ENOENT') throw new SecretNotFound(name);
        throw new BackendUnavailable('files', `${path.join(this.#dir, name)} cannot be read (${code ?? 'error'})`);
      }
    }
  }

  async #read(name: string): Promise<Secret> {
    const file = path.join(this.#dir, name);
    const real = await realpath(file);
    if (!real.startsWith(`${this.#root}${path.sep}`)) throw new BackendUnavailable('files', `${file} leads out of ${this.#dir}: refused`);
    // The resolved path, opened without following a link: what was checked is what is read.
    const fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new BackendUnavailable('files', `${file} is not a regular file`);
      if ((st.mode & 0o077) !== 0) throw new BackendUnavailable('files', `${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): refused; mount it 0400 (Kubernetes: defaultMode: 0400) or chmod 400`);
      const value = (await fh.readFile('utf8')).replace(/\r?\n$/, '');
      if (value === '') throw new SecretNotFound(name);
      return new Secret(value);
    } finally {
      await fh.close();
    }
  }

  async list(_ctx: FetchContext): Promise<readonly string[]> {
    return (await readdir(this.#dir)).filter((n) => NAME.test(n)).sort();
  }
}
