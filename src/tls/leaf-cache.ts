import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { KeyPair } from './certificates.js';
import type { LocalCa } from './local-ca.js';

interface Entry { readonly context: Promise<tls.SecureContext>; readonly renewAfterMs: number }

/**
 * TLS contexts for the hosts keyswap terminates, cached as promises so concurrent first handshakes for a host
 * share one mint. A leaf is replaced once two thirds of its life has passed; a failed mint is not cached.
 *
 * Mints for distinct names run one per event-loop turn. A mint is synchronous CPU work (≈1 ms to sign, ≈1 ms for
 * the secure context, measured here), and a wildcard binding or `tls_termination: all` lets an agent ask for any
 * number of new names at once: run back to back, 300 of them held the loop for 1.2 s (10.8 s with forge's JS
 * signatures); taking turns, every other connection waits for one mint at most.
 */
export class LeafCache {
  readonly #ca: LocalCa;
  readonly #key: KeyPair;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, Entry>;
  readonly #waiting: (() => void)[] = [];
  #mints = 0;

  constructor(ca: LocalCa, key: KeyPair, opts: { max: number; now?: () => number }) {
    this.#ca = ca;
    this.#key = key;
    this.#now = opts.now ?? Date.now;
    this.#cache = new LRUCache({ max: opts.max });
  }

  /** How many leaves were minted: tests use it to prove single-flight and prewarming. */
  get mintCount(): number { return this.#mints; }

  get(host: string): Promise<tls.SecureContext> {
    const hit = this.#cache.get(host);
    if (hit && this.#now() < hit.renewAfterMs) return hit.context;
    const now = this.#now();
    const context = this.#takeTurn(() => this.#mint(host, now));
    // Renew at 2/3 of the leaf's life (60 of 90 days; less when the CA expires sooner), and at most once a
    // minute, so a leaf capped by an expired CA cannot turn every handshake into a mint.
    const lifeMs = this.#ca.leafNotAfter(new Date(now)).getTime() - now;
    this.#cache.set(host, { context, renewAfterMs: now + Math.max(60_000, Math.floor((lifeMs * 2) / 3)) });
    context.catch(() => {
      if (this.#cache.get(host)?.context === context) this.#cache.delete(host);
    });
    return context;
  }

  /** Mints every listed host now, at start, so no agent request waits for a mint. */
  async prewarm(hosts: readonly string[]): Promise<void> {
    await Promise.all(hosts.map((h) => this.get(h)));
  }

  /** Runs `job` after the jobs queued before it, each in its own turn of the event loop (setImmediate). */
  #takeTurn<T>(job: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push(() => {
        try {
          resolve(job());
        } catch (err) {
          reject(err);
        }
      });
      if (this.#waiting.length === 1) setImmediate(() => this.#runNext());
    });
  }

  #runNext(): void {
    this.#waiting.shift()?.();
    // An immediate queued from an immediate runs in the next loop turn, after pending I/O: that is the turn-taking.
    if (this.#waiting.length > 0) setImmediate(() => this.#runNext());
  }

  #mint(host: string, nowMs: number): tls.SecureContext {
    this.#mints++;
    const leaf = this.#ca.mintLeaf(host, this.#key, new Date(nowMs));
    return tls.createSecureContext({
      key: this.#key.privateKeyPem,
      cert: `${leaf.certPem}${this.#ca.certPem}`,
      minVersion: 'TLSv1.2',
    });
  }
}
