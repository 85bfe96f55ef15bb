import type { BackendSpec } from '../config/index.js';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendRefused, BackendUnavailable, SecretNotFound } from './errors.js';
import { pickField } from './json-field.js';
import { Secret } from './secret.js';
import { unavailable, VaultAuthRefused, VaultClient, vaultErrors } from './vault-client.js';

type VaultSpec = Extract<BackendSpec, { type: 'vault' }>;

/**
 * HashiCorp Vault / OpenBao KV version 2. Secret NAME is read at `<mount>/data/<prefix><NAME>` (or the path the
 * secret names), its field `field` (default `value`), always the current version. Read-only: keyswap never writes
 * to Vault. Absent or deleted → SecretNotFound; a field that is not there, a policy that refuses, a sealed or
 * unreachable Vault → BackendUnavailable with the reason; requests fail closed either way.
 */
export class VaultBackend implements SecretsBackend {
  readonly type = 'vault';
  readonly #spec: VaultSpec;
  readonly #client: VaultClient;

  private constructor(spec: VaultSpec, client: VaultClient) {
    this.#spec = spec;
    this.#client = client;
  }

  /** Logs in at once: refused credentials stop keyswap with the reason; a Vault that does not answer yet only warns. */
  static async open(spec: VaultSpec, warn: (message: string) => void): Promise<VaultBackend> {
    const client = await VaultClient.open(spec, 'vault backend');
    try {
      await client.authenticate();
    } catch (err) {
      if (err instanceof VaultAuthRefused) {
        await client.close();
        throw new BackendConfigError(`vault backend: ${err.message}`);
      }
      warn(`vault backend: ${(err as Error).message}; requests that need its secrets fail closed until it answers`);
    }
    return new VaultBackend(spec, client);
  }

  async fetch(name: string, ctx: FetchContext): Promise<Secret> {
    const secretPath = ctx.location?.path ?? `${this.#spec.prefix}${name}`;
    const field = ctx.location?.field ?? this.#spec.field;
    const where = `${this.#spec.mount}/data/${secretPath}`;
    let r;
    try {
      r = await this.#client.call('GET', `${this.#spec.mount}/data/${encodePath(secretPath)}`, undefined, ctx.signal);
    } catch (err) {
      if (err instanceof VaultAuthRefused) throw new BackendUnavailable('vault', err.message);
      throw err;
    }
    if (r.status === 404) throw new SecretNotFound(name);
    if (r.status === 403) throw new BackendRefused('vault', `permission denied reading ${where} (403 ${vaultErrors(r.body)}): the token's policies do not allow it`);
    if (r.status !== 200) throw unavailable(r, `reading ${where}`);
    const data = (r.body as { data?: { data?: unknown } } | null)?.data?.data;
    if (data === null || data === undefined) throw new SecretNotFound(name); // a deleted or destroyed version
    if (typeof data !== 'object' || Array.isArray(data)) throw new BackendRefused('vault', `${where} is not a KV version 2 secret (is the mount KV v1?)`);
    return new Secret(pickField('vault', data as Record<string, unknown>, field, where));
  }

  async list(ctx: FetchContext): Promise<readonly string[]> {
    // GET with list=true is the documented spelling of LIST, which not every HTTP stack carries.
    const r = await this.#client.call('GET', `${this.#spec.mount}/metadata/${encodePath(this.#spec.prefix)}?list=true`, undefined, ctx.signal);
    if (r.status === 404) return [];
    if (r.status !== 200) throw unavailable(r, `listing ${this.#spec.mount}/metadata/${this.#spec.prefix}`);
    const keys = (r.body as { data?: { keys?: unknown } } | null)?.data?.keys;
    return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string' && !k.endsWith('/')) : [];
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

/** Each segment percent-encoded; `.` and `..` segments never reach Vault's router. */
export function encodePath(p: string): string {
  return p.split('/').map((seg) => {
    if (seg === '.' || seg === '..') throw new BackendUnavailable('vault', `path segment '${seg}' refused`);
    return encodeURIComponent(seg);
  }).join('/');
}
