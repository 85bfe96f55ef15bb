import { createHmac, randomBytes } from 'node:crypto';
import type { Secret } from '../secret.js';

/** A credential as minted: the value, and when it stops being valid (null: the minter did not say). */
export interface Minted {
  readonly value: Secret;
  readonly expiresAtMs: number;
}

export interface MintedCacheOptions {
  readonly now?: () => number;
  /** Below this lifetime a credential is used once and never cached: it would expire in flight. */
  readonly minLifetimeMs?: number;
  /** Renew this long before a credential's use-by time, in the background, so requests rarely wait. */
  readonly refreshAheadMs?: number;
}

export const MIN_LIFETIME_MS = 5_000;
export const REFRESH_AHEAD_MS = 60_000;

interface Entry {
  readonly minted: Minted;
  /** When it stops being served: its expiry less the minter's safety margin. */
  readonly useByMs: number;
}

type MintFn = (trigger: 'request' | 'refresh_ahead') => Promise<Minted & { readonly useByMs: number }>;

/**
 * Minted credentials, apart from the secret cache. Keyed by an HMAC (a key of this process only) over everything
 * the credential depends on, secret values included, so a rotated input is a new key and the old credential is
 * never served for it, and the map holds no digest of a secret anyone could test guesses against. One mint in
 * flight per key; a credential past its use-by time is never served; one close to it is served while a
 * background mint replaces it.
 */
export class MintedCache {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();
  /** A failed mint is not retried before its backoff (1 s, doubling to 30 s): an endpoint that refuses is never stormed. */
  readonly #failures = new Map<string, { readonly error: unknown; readonly untilMs: number; readonly backoffMs: number }>();
  readonly #now: () => number;
  readonly #minLifetimeMs: number;
  readonly #refreshAheadMs: number;

  constructor(o: MintedCacheOptions = {}) {
    this.#now = o.now ?? Date.now;
    this.#minLifetimeMs = o.minLifetimeMs ?? MIN_LIFETIME_MS;
    this.#refreshAheadMs = o.refreshAheadMs ?? REFRESH_AHEAD_MS;
  }

  /** The cache key for these inputs: `parts` are the minter's settings and its inputs' values. */
  keyOf(parts: readonly string[]): string {
    const mac = createHmac('sha256', this.#key);
    for (const p of parts) mac.update(`${Buffer.byteLength(p)}:`).update(p);
    return mac.digest('base64url');
  }

  /** Resolves once no mint is under way (shutdown: a rotated refresh token in flight must land before exit). */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight.values()]);
  }

  async get(key: string, mint: MintFn): Promise<Secret> {
    const now = this.#now();
    const hit = this.#entries.get(key);
    const failed = this.#failures.get(key);
    const backingOff = failed !== undefined && now < failed.untilMs;
    if (hit !== undefined && now < hit.useByMs) {
      if (hit.useByMs - now <= this.#refreshAheadMs && !this.#inflight.has(key) && !backingOff) {
        // Renewed ahead; a failure here is audited by the minter and the next request after use-by retries.
        this.#start(key, mint, 'refresh_ahead').catch(() => {});
      }
      return hit.minted.value;
    }
    const running = this.#inflight.get(key);
    if (running === undefined && backingOff) throw failed.error;
    return (await (running ?? this.#start(key, mint, 'request'))).minted.value;
  }

  #start(key: string, mint: MintFn, trigger: 'request' | 'refresh_ahead'): Promise<Entry> {
    const p = mint(trigger).then((m) => {
      const entry = { minted: m, useByMs: m.useByMs };
      if (entry.useByMs - this.#now() >= this.#minLifetimeMs) {
        // Bounded: a rotated input leaves its old key behind; the oldest entries go first.
        if (this.#entries.size >= 1000) this.#entries.delete(this.#entries.keys().next().value as string);
        this.#entries.set(key, entry);
      }
      return entry;
    });
    this.#inflight.set(key, p);
    p.then(
      () => {
        this.#inflight.delete(key);
        this.#failures.delete(key);
      },
      (error: unknown) => {
        this.#inflight.delete(key);
        const backoffMs = Math.min((this.#failures.get(key)?.backoffMs ?? 500) * 2, 30_000);
        this.#failures.set(key, { error, untilMs: this.#now() + backoffMs, backoffMs });
      },
    );
    return p;
  }
}
