import type { FetchContext, SecretsBackend } from './backend.js';
import { SecretNotFound } from './errors.js';
import { Secret } from './secret.js';

/**
 * Secrets from keyswap's own environment: NAME is read from `<prefix><NAME>` (`-` becomes `_`). For CI, where
 * the proxy step holds the secrets and the job's steps get placeholders. The map is the copy cli/ took at start.
 */
export class EnvBackend implements SecretsBackend {
  readonly type = 'env';
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #prefix: string;

  constructor(env: Readonly<Record<string, string | undefined>>, prefix: string) {
    this.#env = env;
    this.#prefix = prefix;
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    const value = this.#env[this.variableFor(name)];
    if (value === undefined || value === '') throw new SecretNotFound(name);
    return new Secret(value);
  }

  async list(): Promise<readonly string[]> {
    return Object.keys(this.#env).filter((k) => k.startsWith(this.#prefix) && this.#env[k]).map((k) => k.slice(this.#prefix.length));
  }

  variableFor(name: string): string {
    return `${this.#prefix}${name.replaceAll('-', '_')}`;
  }
}
