import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { MintSharing, SharedMinted } from '../mint/index.js';
import { Secret } from '../secret.js';
import { seal, unseal, sealed } from '../secrets/index.js';
import { SharedStateUnavailable } from '../usage/index.js';
import { macOf, type SharedKeys } from './keys.js';
import { script, type SharedStore } from './store.js';

/** Longer than any exchange keyswap waits for (the token endpoint's connect and read timeouts). */
const LEASE_MS = 30_000;
const POLL_MS = 50;
/** Rotated-from tokens remembered per refresh token: a backend write-back may lag this many rotations behind. */
const SUPERSEDED_KEPT = 64;
/** How long a refresh record outlives its last rotation: long enough for any backend write-back to land. */
const RECORD_KEPT_MS = 30 * 24 * 3600_000;

/** Deletes the lease only if it is still ours: one that expired and was taken by another replica is left alone. */
const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

const payload = z.strictObject({ value: z.string(), expiresAtMs: z.number(), useByMs: z.number() });
/**
 * The newest refresh token the replicas handed on, the MACs of those it superseded, and a version that only grows:
 * sealed as one value, so someone who can write Redis but not key_secret can neither edit the list nor pass an
 * older record off as current to a replica that saw a newer one.
 */
const refreshRecord = z.strictObject({ v: z.number().int().positive(), token: z.string(), superseded: z.array(z.string()).max(SUPERSEDED_KEPT) });
type RefreshRecord = z.infer<typeof refreshRecord>;
/** A value in Redis past this is not keyswap's (a sealed credential is a few KiB at most): not read. */
const MAX_VALUE_BYTES = 64 * 1024;

/**
 * Minted credentials shared by replicas through Redis. The credential is stored sealed (AES-256-GCM, a key derived
 * from `shared_state.key_secret`, its Redis key as associated data, so a sealed value moved to another key does
 * not open) until its use-by time; a lease (SET NX PX) lets one replica exchange at a time while the others wait
 * for its result. Redis unreachable: refused, except that under `local` a credential that spends no refresh token
 * is minted here alone.
 */
export class SharedMinting implements MintSharing {
  readonly #store: SharedStore;
  readonly #keySecret: () => Promise<SharedKeys>;
  #keys: Promise<SharedKeys> | null = null;
  readonly #fallback: 'refuse' | 'local';
  readonly #log: Logger;
  readonly #now: () => number;
  /** The highest refresh-record version this replica has seen, per secret: an older one is a rollback, ignored. */
  readonly #seen = new Map<string, number>();

  /** `keys`: read from the backend when first needed (a backend slow at start does not stop keyswap), then kept. */
  constructor(store: SharedStore, keys: () => Promise<SharedKeys>, o: { readonly fallback: 'refuse' | 'local'; readonly log: Logger; readonly now?: () => number }) {
    this.#store = store;
    this.#keySecret = keys;
    this.#fallback = o.fallback;
    this.#log = o.log;
    this.#now = o.now ?? Date.now;
  }

  async once(identity: readonly string[], needMs: number, rotates: boolean, mint: () => Promise<SharedMinted>): Promise<{ minted: SharedMinted; peer: boolean }> {
    if (!this.#store.available) {
      // A refresh token spent by two replicas at once can revoke the grant (OAuth 2.1 reuse detection): never alone.
      if (this.#fallback === 'local' && !rotates) return { minted: await mint(), peer: false };
      throw new SharedStateUnavailable('Redis is not connected');
    }
    const keys = await this.#derived();
    const at = this.#store.key('mint', macOf(keys.name, identity.map((p) => `${Buffer.byteLength(p)}:${p}`).join('')));
    const leaseAt = `${at}:lease`;
    const deadline = this.#now() + LEASE_MS + 5_000;
    for (;;) {
      const held = await this.#read(keys, at, needMs);
      if (held !== null) return { minted: held, peer: true };
      const lease = randomBytes(16).toString('base64url');
      if (await this.#store.setIfAbsent(leaseAt, lease, LEASE_MS)) {
        try {
          // A replica may have stored one between the read and the lease.
          const stored = await this.#read(keys, at, needMs);
          if (stored !== null) return { minted: stored, peer: true };
          const minted = await mint();
          await this.#write(keys, at, minted).catch((err: Error) => this.#log.warn({ why: err.message }, 'shared state: a minted credential could not be shared; other replicas will mint their own'));
          return { minted, peer: false };
        } finally {
          await this.#store.eval(RELEASE, [leaseAt], [lease]).catch(() => {});
        }
      }
      if (this.#now() > deadline) throw new SharedStateUnavailable('another replica held the mint lease too long');
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /**
   * `stored` is the backend's value, read past any cache. Redis's record wins only when `stored` is a token some
   * replica rotated away from (its write-back has not landed, or is being retried); a token no replica rotated from
   * is one an operator stored since, and wins. With no record (a Redis restarted without persistence), or one older
   * than this replica saw (rolled back), the backend's value is all there is; MintService never sends one it spent.
   */
  async currentRefreshToken(secretName: string, stored: string): Promise<string> {
    const keys = await this.#derived();
    const at = this.#refreshKey(keys, secretName);
    const record = await this.#record(keys, at, secretName);
    if (record === null || record.token === stored) return stored;
    return record.superseded.includes(macOf(keys.mac, stored)) ? record.token : stored;
  }

  async rotated(secretName: string, from: string, to: string): Promise<void> {
    const keys = await this.#derived();
    const at = this.#refreshKey(keys, secretName);
    try {
      const record = await this.#record(keys, at, secretName);
      const next: RefreshRecord = { v: Math.max(record?.v ?? 0, this.#seen.get(secretName) ?? 0) + 1, token: to, superseded: [macOf(keys.mac, from), ...(record?.superseded ?? [])].slice(0, SUPERSEDED_KEPT) };
      // Written under the mint lease: one writer at a time.
      await this.#store.setUntil(at, JSON.stringify(seal(keys.seal, Buffer.from(JSON.stringify(next), 'utf8'), at)), this.#now() + RECORD_KEPT_MS);
      this.#seen.set(secretName, next.v);
    } catch (err) {
      // Not fatal: the backend write-back still stores it, and a replica reading the backend then finds it there.
      this.#log.error({ secret_name: secretName, why: (err as Error).message }, 'shared state: a rotated refresh token could not be handed to the other replicas; they read it from the backend once it is written back');
    }
  }

  /** The refresh record as this replica may trust it: null when absent, unreadable, or older than one it saw. */
  async #record(keys: SharedKeys, at: string, secretName: string): Promise<RefreshRecord | null> {
    const text = await this.#store.get(at);
    const plain = text === null ? null : this.#open(keys, at, text);
    if (plain === null) return null;
    const parsed = refreshRecord.safeParse((() => { try { return JSON.parse(plain) as unknown; } catch { return null; } })());
    if (!parsed.success) return null;
    const seen = this.#seen.get(secretName) ?? 0;
    if (parsed.data.v < seen) {
      this.#log.error({ secret_name: secretName, version: parsed.data.v, seen }, 'shared state: the refresh-token record in Redis is older than one this replica saw (rolled back?); ignored, the backend\'s value is used');
      return null;
    }
    this.#seen.set(secretName, parsed.data.v);
    return parsed.data;
  }

  /** The derived keys; a failure (the secret missing, too short) is not kept, so the next use reads it again. */
  #derived(): Promise<SharedKeys> {
    this.#keys ??= this.#keySecret().catch((err: Error) => {
      this.#keys = null;
      this.#log.error({ why: err.message }, 'shared state: key_secret unavailable; minted credentials are refused');
      throw new SharedStateUnavailable(`key_secret: ${err.message}`, { cause: err });
    });
    return this.#keys;
  }

  #refreshKey(keys: SharedKeys, secretName: string): string {
    return this.#store.key('refresh', macOf(keys.name, `refresh:${secretName}`));
  }

  async #read(keys: SharedKeys, at: string, needMs: number): Promise<SharedMinted | null> {
    const text = await this.#store.get(at);
    if (text === null) return null;
    const plain = this.#open(keys, at, text);
    if (plain === null) return null;
    const p = payload.safeParse((() => { try { return JSON.parse(plain) as unknown; } catch { return null; } })());
    if (!p.success || p.data.useByMs - this.#now() < needMs) return null;
    return { value: new Secret(p.data.value), expiresAtMs: p.data.expiresAtMs, useByMs: p.data.useByMs };
  }

  async #write(keys: SharedKeys, at: string, m: SharedMinted): Promise<void> {
    if (m.useByMs <= this.#now()) return;
    const plain = JSON.stringify({ value: m.value.reveal(), expiresAtMs: m.expiresAtMs, useByMs: m.useByMs });
    await this.#store.setUntil(at, JSON.stringify(seal(keys.seal, Buffer.from(plain, 'utf8'), at)), m.useByMs);
  }

  /** The plaintext of a sealed value, or null (logged) when it does not open: a replica with another key_secret. */
  #open(keys: SharedKeys, at: string, text: string): string | null {
    if (text.length > MAX_VALUE_BYTES) {
      this.#log.error({ key: at, bytes: text.length }, 'shared state: a value in Redis is far larger than keyswap writes; not read');
      return null;
    }
    const s = sealed.safeParse((() => { try { return JSON.parse(text) as unknown; } catch { return null; } })());
    const plain = s.success ? unseal(keys.seal, s.data, at) : null;
    if (plain === null) this.#log.error({ key: at }, 'shared state: a value in Redis does not open with this key_secret (do all replicas hold the same one?)');
    return plain === null ? null : plain.toString('utf8');
  }
}
