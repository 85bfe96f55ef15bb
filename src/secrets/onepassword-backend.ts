import type { Dispatcher } from 'undici';
import type { BackendSpec } from '../config/index.js';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { readCredentialFile } from './credential-file.js';
import { BackendRefused, BackendUnavailable, SecretNotFound } from './errors.js';
import { backendDispatcher, jsonCall, type JsonAnswer } from './json-http.js';
import { Secret } from './secret.js';

type OnePasswordSpec = Extract<BackendSpec, { type: 'onepassword' }>;

const UUID = /^[a-z0-9]{26}$/;

interface ItemField { readonly id?: string; readonly label?: string; readonly value?: unknown; readonly purpose?: string }

/**
 * 1Password through a Connect server's REST API (three GETs; no SDK needed). Secret NAME is the item titled NAME
 * (or the secret's own `backend.path`) in `vault` (a name or a UUID, resolved once); its field with label `field`,
 * else the item's password or `credential` field. A title two items share is refused, naming both ids. The
 * Connect token is read from `token_file` at each cache miss, so a rotated token needs no restart.
 */
export class OnePasswordBackend implements SecretsBackend {
  readonly type = 'onepassword';
  readonly #spec: OnePasswordSpec;
  readonly #dispatcher: Dispatcher;
  #vaultId: string | null = null;

  private constructor(spec: OnePasswordSpec, dispatcher: Dispatcher) {
    this.#spec = spec;
    this.#dispatcher = dispatcher;
  }

  /** Checks the token file and the vault at once: a refused token or an unknown vault stops keyswap with the reason. */
  static async open(spec: OnePasswordSpec, warn: (message: string) => void): Promise<OnePasswordBackend> {
    const backend = new OnePasswordBackend(spec, await backendDispatcher(spec.caFile, 'onepassword backend'));
    try {
      await backend.#vault(AbortSignal.timeout(spec.timeoutMs));
    } catch (err) {
      if (err instanceof BackendConfigError) {
        await backend.close();
        throw err;
      }
      warn(`onepassword backend: ${(err as Error).message}; requests that need its secrets fail closed until it answers`);
    }
    return backend;
  }

  async fetch(name: string, ctx: FetchContext): Promise<Secret> {
    try {
      return await this.#read(name, ctx);
    } catch (err) {
      // What stops keyswap at start (a refused token, an unreadable token file) is an outage once it serves.
      throw err instanceof BackendConfigError ? new BackendUnavailable('onepassword', err.message.replace(/^onepassword backend: /, '')) : err;
    }
  }

  async #read(name: string, ctx: FetchContext): Promise<Secret> {
    const title = ctx.location?.path ?? name;
    const vault = await this.#vault(ctx.signal);
    const list = await this.#get(`v1/vaults/${vault}/items?filter=${encodeURIComponent(`title eq "${title.replaceAll('"', '\\"')}"`)}`, ctx.signal);
    if (list.status !== 200 || !Array.isArray(list.body)) throw this.#failed(list, `listing items titled ${title}`);
    const ids = (list.body as { id?: unknown; title?: unknown }[]).filter((i) => i.title === title && typeof i.id === 'string').map((i) => i.id as string);
    if (ids.length === 0) throw new SecretNotFound(name);
    if (ids.length > 1) throw new BackendRefused('onepassword', `more than one item is titled ${title} (ids ${ids.join(', ')}); rename all but one`);
    const item = await this.#get(`v1/vaults/${vault}/items/${ids[0]}`, ctx.signal);
    if (item.status === 404) throw new SecretNotFound(name);
    if (item.status !== 200) throw this.#failed(item, `reading item ${title}`);
    const fields = ((item.body as { fields?: unknown } | null)?.fields ?? []) as ItemField[];
    return new Secret(fieldValue(fields, ctx.location?.field ?? this.#spec.field, title));
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async #vault(signal: AbortSignal): Promise<string> {
    if (this.#vaultId !== null) return this.#vaultId;
    const wanted = this.#spec.vault;
    if (UUID.test(wanted)) {
      const r = await this.#get(`v1/vaults/${wanted}`, signal);
      if (r.status === 200) return (this.#vaultId = wanted);
      if (r.status !== 404) throw this.#failed(r, `reading vault ${wanted}`);
    }
    const r = await this.#get(`v1/vaults?filter=${encodeURIComponent(`name eq "${wanted.replaceAll('"', '\\"')}"`)}`, signal);
    if (r.status !== 200 || !Array.isArray(r.body)) throw this.#failed(r, 'listing vaults');
    const match = (r.body as { id?: unknown; name?: unknown }[]).filter((v) => v.name === wanted && typeof v.id === 'string');
    if (match.length !== 1) throw new BackendConfigError(`onepassword backend: ${match.length === 0 ? `no vault named ${wanted} is shared with this Connect token` : `more than one vault is named ${wanted}; use its UUID`}`);
    return (this.#vaultId = match[0]?.id as string);
  }

  async #get(apiPath: string, signal: AbortSignal): Promise<JsonAnswer> {
    const token = await readCredentialFile(this.#spec.tokenFile, { private: true });
    if ('problem' in token) throw new BackendConfigError(`onepassword backend: ${token.problem}`);
    return jsonCall('onepassword', this.#dispatcher, new URL(apiPath, this.#spec.url), { method: 'GET', headers: { authorization: `Bearer ${token.value}` }, signal, timeoutMs: this.#spec.timeoutMs });
  }

  #failed(r: JsonAnswer, what: string): Error {
    const message = (r.body as { message?: unknown } | null)?.message;
    const reason = typeof message === 'string' ? message.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 160) : 'no reason given';
    if (r.status === 401) return new BackendConfigError(`onepassword backend: the Connect token was refused (401 ${reason})`);
    if (r.status === 403) return new BackendRefused('onepassword', `${what}: the Connect token may not read this vault (403 ${reason})`);
    return new BackendUnavailable('onepassword', `${what} answered ${r.status} (${reason})`);
  }
}

/** The field labelled `label`, or by default the item's password (Login, Password) or `credential` (API Credential). */
function fieldValue(fields: readonly ItemField[], label: string | null, title: string): string {
  const byLabel = (l: string): ItemField[] => fields.filter((f) => f.label === l);
  const found = label !== null ? byLabel(label) : fields.filter((f) => f.purpose === 'PASSWORD').length > 0 ? fields.filter((f) => f.purpose === 'PASSWORD') : byLabel('credential');
  const labels = [...new Set(fields.map((f) => f.label).filter((l): l is string => typeof l === 'string'))].sort().join(', ') || 'none';
  if (found.length === 0) throw new BackendRefused('onepassword', `item ${title} has no ${label === null ? 'password or credential field' : `field labelled '${label}'`} (fields: ${labels}); set field: in the config`);
  if (found.length > 1) throw new BackendRefused('onepassword', `item ${title} has more than one field labelled '${label ?? found[0]?.label}'`);
  const value = found[0]?.value;
  if (typeof value !== 'string' || value === '') throw new BackendRefused('onepassword', `item ${title}: the field is empty`);
  return value;
}

