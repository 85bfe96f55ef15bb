import type { BackendLocation, Config } from '../config/index.js';
import type { FetchContext, SecretsBackend, StoreOptions } from './backend.js';
import { BackendUnavailable } from './errors.js';
import type { Secret } from './secret.js';

export type Routing = Pick<Config, 'backendOf' | 'locations'>;

/**
 * The default backend and the named ones behind one SecretsBackend: each name goes to the backend the config
 * routes it to (`secrets.X.backend`), anything else to the default. `partition` tells the cache which backend a
 * name belongs to, so one backend's outage backs off only its own names.
 */
export class RoutedBackend implements SecretsBackend {
  readonly type: string;
  readonly #default: SecretsBackend;
  readonly #named: ReadonlyMap<string, SecretsBackend>;
  #routes: ReadonlyMap<string, string> = new Map();
  #locations: ReadonlyMap<string, BackendLocation> = new Map();

  constructor(fallback: SecretsBackend, named: ReadonlyMap<string, SecretsBackend>, routing: Routing) {
    this.#default = fallback;
    this.#named = named;
    this.type = fallback.type;
    this.reroute(routing);
  }

  /** A reload may add secrets to a backend already open, or move one between them: only the backends need a restart. */
  reroute(routing: Routing): void {
    this.#routes = routing.backendOf;
    this.#locations = routing.locations;
  }

  /** The backend that answers for `name`, and the key the cache keeps its backoff under. */
  partition(name: string): { readonly key: string; readonly backend: SecretsBackend } {
    const key = this.#routes.get(name);
    const backend = key === undefined ? undefined : this.#named.get(key);
    return key === undefined || backend === undefined ? { key: '', backend: this.#default } : { key, backend };
  }

  fetch(name: string, ctx: FetchContext): Promise<Secret> {
    return this.partition(name).backend.fetch(name, { ...ctx, location: this.#locations.get(name) ?? null });
  }

  async store(name: string, value: Secret, opts?: StoreOptions): Promise<void> {
    const { backend } = this.partition(name);
    if (backend.store === undefined) throw new BackendUnavailable(backend.type, 'this backend is read-only');
    await backend.store(name, value, opts);
  }

  async list(ctx: FetchContext): Promise<readonly string[]> {
    return (await this.#default.list?.(ctx)) ?? [];
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#default, ...this.#named.values()].map((b) => b.close?.()));
  }
}

