import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable, SecretNotFound } from './errors.js';
import { Secret } from './secret.js';

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * systemd credentials: secret NAME is the file `$CREDENTIALS_DIRECTORY/NAME`, put there by `LoadCredential=` or
 * `LoadCredentialEncrypted=` (decrypted by systemd, on a private non-swappable mount, readable by the service
 * alone). Read at each fetch: the cache in front decides how often.
 */
export class CredentialsBackend implements SecretsBackend {
  readonly type = 'credentials';
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(directory: string | null, env: Readonly<Record<string, string | undefined>>): Promise<CredentialsBackend> {
    const dir = directory ?? env.CREDENTIALS_DIRECTORY;
    if (!dir) {
      throw new BackendConfigError('credentials backend: $CREDENTIALS_DIRECTORY is not set; run keyswap under systemd with LoadCredential=NAME:PATH, or set backend.config.directory');
    }
    try {
      if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new BackendConfigError(`credentials backend: ${dir} is not a readable directory`);
    }
    return new CredentialsBackend(dir);
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    // A name is a file name here: never let one walk out of the directory.
    if (!NAME.test(name)) throw new SecretNotFound(name);
    const file = path.join(this.#dir, name);
    try {
      const mode = (await stat(file)).mode;
      if ((mode & 0o077) !== 0) throw new BackendUnavailable('credentials', `credential ${name} is readable by group or others; run: chmod 400 ${file}`);
      const value = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
      if (value === '') throw new SecretNotFound(name);
      return new Secret(value);
    } catch (err) {
      if (err instanceof BackendUnavailable || err instanceof SecretNotFound) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SecretNotFound(name);
      throw new BackendUnavailable('credentials', `credential ${name} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}
