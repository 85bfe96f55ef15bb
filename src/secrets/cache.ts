import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { SecretsBackend, StoreOptions } from './backend.js';
import { BackendRefused, BackendUnavailable, SecretNotFound } from './errors.js';
import type { Secret } from './secret.js';

export interface SecretCacheOptions {
  readonly ttlMs: number;
  readonly jitterMs: number;
  readonly maxEntries: number;
  /** 0: never serve past the TTL. Above 0: serve a stale value while refreshes fail, up to this long past expiry. */
  readonly maxStaleMs: number;
  readonly negativeTtlMs?: number;
  readonly fetchTimeoutMs?: number;
  /** Told the duration of every backend call and whether it returned a value (metrics). */
  readonly onBackendCall?: (ms: number, ok: boolean) => void;
  readonly now?: () => number;
  readonly random?: () => number;
}

interface Entry {
  readonly value: Secret | null;
  readonly error: Error | null;
  /** Fresh until then. */
  readonly expiresAtMs: number;
  /** For values: the last moment a stale value may be served. */
  readonly staleUntilMs: number;
}

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/**
 * The TTL cache in front of a backend (DESIGN.md §6, K8): TTL ± jitter so entries do not expire together;
 * single-flight so concurrent misses cost one backend call; failures remembered only briefly and retried with
 * exponential backoff so an outage never becomes a retry storm; a generation counter so a fetch that spans a
 * flush (a reload) is never cached. Callers see exactly SecretNotFound or BackendUnavailable.
 */
export class SecretCache {
  readonly #backend: SecretsBackend;
  readonly #o: Required<SecretCacheOptions>;
  readonly #entries: LRUCache<string, Entry>;
  readonly #inflight = new Map<string, Promise<Secret>>();
  #generation = 0;
  /** Per backend (RoutedBackend's partitions): an outage of one backs off only the names it holds. */
  readonly #backoff = new Map<string, { ms: number; untilMs: number; lastError: Error }>();
  readonly stats = { hits: 0, misses: 0, backendCalls: 0, staleServed: 0, failures: 0 };

  constructor(backend: SecretsBackend, opts: SecretCacheOptions) {
    this.#backend = backend;
    this.#o = {
      negativeTtlMs: 1_000,
      fetchTimeoutMs: 10_000,
      now: Date.now,
      random: Math.random,
      onBackendCall: () => {},
      ...opts,
      jitterMs: Math.min(opts.jitterMs, opts.ttlMs / 2),
    };
    this.#entries = new LRUCache({ max: opts.maxEntries });
  }

  async get(name: string): Promise<Secret> {
    const now = this.#o.now();
    const entry = this.#entries.get(name);
    if (entry && now < entry.expiresAtMs) {
      if (entry.value) {
        this.stats.hits++;
        return entry.value;
      }
      throw entry.error ?? new BackendUnavailable(this.#partition(name).backend.type, 'unknown failure');
    }
    this.stats.misses++;
    try {
      return await this.#refresh(name, now);
    } catch (err) {
      // K8 with max-stale: a value past its TTL may bridge a failing backend, never past its stale limit, and never
      // a backend that answered no (a revoked policy withdraws the value).
      if (entry?.value && err instanceof BackendUnavailable && !(err instanceof BackendRefused) && now < entry.staleUntilMs) {
        this.stats.staleServed++;
        return entry.value;
      }
      throw err;
    }
  }

  /**
   * The backend's value now, past any cached copy (and cached for the rest): what a value another process may have
   * rewritten since (a refresh token several replicas rotate) is read with.
   */
  fresh(name: string): Promise<Secret> {
    this.stats.misses++;
    return this.#refresh(name, this.#o.now());
  }

  /**
   * Writes a value through to the backend, then serves it: a rotated refresh token must be stored before the
   * credential minted with it is used. Rejects with BackendUnavailable when the backend cannot be written.
   */
  async store(name: string, value: Secret, opts: StoreOptions = {}): Promise<void> {
    if (this.#backend.store === undefined) throw new BackendUnavailable(this.#backend.type, 'this backend is read-only');
    await this.#backend.store(name, value, opts);
    // A fetch under way may hold the old value: a new generation keeps it out of the cache.
    this.#generation++;
    const t = this.#o.now();
    this.#entries.set(name, { value, error: null, expiresAtMs: t + this.#o.ttlMs, staleUntilMs: t + this.#o.ttlMs + this.#o.maxStaleMs });
  }

  /** Forget every value; fetches already under way finish for their callers but are not cached. */
  flush(): void {
    this.#generation++;
    this.#entries.clear();
  }

  close(): void {
    this.flush();
  }

  #refresh(name: string, now: number): Promise<Secret> {
    const running = this.#inflight.get(name);
    if (running) return running;
    const { key, backend } = this.#partition(name);
    const backoff = this.#backoff.get(key);
    if (backoff !== undefined && now < backoff.untilMs) return Promise.reject(backoff.lastError);
    const generation = this.#generation;
    const call = this.#callBackend(name, backend)
      .then((value) => {
        this.#backoff.delete(key);
        if (generation === this.#generation) {
          const t = this.#o.now();
          const jitter = (this.#o.random() * 2 - 1) * this.#o.jitterMs;
          const expiresAtMs = t + this.#o.ttlMs + jitter;
          this.#entries.set(name, { value, error: null, expiresAtMs, staleUntilMs: expiresAtMs + this.#o.maxStaleMs });
        }
        return value;
      })
      .catch((err: Error) => {
        this.stats.failures++;
        const t = this.#o.now();
        if (err instanceof BackendUnavailable && !(err instanceof BackendRefused)) {
          const previousMs = this.#backoff.get(key)?.ms ?? 0;
          const ms = previousMs === 0 ? BACKOFF_START_MS : Math.min(previousMs * 2, BACKOFF_MAX_MS);
          // Full jitter within the window's upper half: clients of one outage do not retry in lockstep.
          this.#backoff.set(key, { ms, untilMs: t + ms * (0.5 + this.#o.random() / 2), lastError: err });
        }
        const previous = this.#entries.get(name);
        if (generation === this.#generation && !(previous?.value && err instanceof BackendUnavailable && !(err instanceof BackendRefused))) {
          this.#entries.set(name, { value: null, error: err, expiresAtMs: t + this.#o.negativeTtlMs, staleUntilMs: 0 });
        }
        throw err;
      })
      .finally(() => this.#inflight.delete(name));
    this.#inflight.set(name, call);
    return call;
  }

  #partition(name: string): { readonly key: string; readonly backend: SecretsBackend } {
    return this.#backend.partition?.(name) ?? { key: '', backend: this.#backend };
  }

  async #callBackend(name: string, backend: SecretsBackend): Promise<Secret> {
    this.stats.backendCalls++;
    const started = performance.now();
    let ok = false;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new BackendUnavailable(backend.type, `no answer within ${this.#o.fetchTimeoutMs} ms`));
      }, this.#o.fetchTimeoutMs);
    });
    try {
      // The race bounds a backend that ignores the abort signal (the Bitwarden SDK has no timeouts at all).
      const value = await Promise.race([this.#backend.fetch(name, { signal: controller.signal }), timeout]);
      ok = true;
      return value;
    } catch (err) {
      if (err instanceof SecretNotFound || err instanceof BackendUnavailable) throw err;
      throw new BackendUnavailable(backend.type, 'unexpected backend error', { cause: err });
    } finally {
      clearTimeout(timer);
      this.#o.onBackendCall(performance.now() - started, ok);
    }
  }
}
