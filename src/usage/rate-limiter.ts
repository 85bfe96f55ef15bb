import { LRUCache } from 'lru-cache';

interface Bucket { tokens: number; updatedMs: number }

export interface Rate { readonly count: number; readonly perMs: number }
export type Taken = { ok: true } | { ok: false; retryAfterMs: number };

/** Binding `rate:` limits: this process's buckets, or (shared_state) the replicas' shared ones, which answer later. */
export interface RateGate {
  take(key: string, rate: Rate, nowMs: number): Taken | Promise<Taken>;
}

/** Token buckets for binding `rate:` limits, keyed by client, secret and binding; bounded in memory. */
export class RateLimiter implements RateGate {
  readonly #buckets = new LRUCache<string, Bucket>({ max: 10_000 });

  /** Takes one token; when none is left, says how long until one is. */
  take(key: string, rate: Rate, nowMs: number): Taken {
    const perTokenMs = rate.perMs / rate.count;
    const b = this.#buckets.get(key) ?? { tokens: rate.count, updatedMs: nowMs };
    b.tokens = Math.min(rate.count, b.tokens + (nowMs - b.updatedMs) / perTokenMs);
    b.updatedMs = nowMs;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - b.tokens) * perTokenMs) };
  }
}
