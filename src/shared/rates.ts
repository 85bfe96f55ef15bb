import { createHash } from 'node:crypto';
import { RateLimiter, SharedStateUnavailable, type Rate, type RateGate, type Taken } from '../usage/index.js';
import { script, type SharedStore } from './store.js';

/**
 * GCRA (the generic cell rate algorithm) as one Lua script: a bucket of `count` requests refilled one every
 * per/count ms, kept as its theoretical arrival time, on Redis's clock so replicas' clocks never disagree. Atomic:
 * 3 replicas sending 300 requests at once against a limit of 100 get exactly 100 through.
 */
const GCRA = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - interval * burst
if now < allow_at then return math.ceil(allow_at - now) end
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return 0
`);

/**
 * Binding `rate:` limits shared by every replica. With Redis unreachable: refused (`refuse`), or this replica's
 * share, count ÷ replicas, from its own buckets (`local`).
 */
export class SharedRates implements RateGate {
  readonly #store: SharedStore;
  readonly #local = new RateLimiter();
  readonly #fallback: 'refuse' | 'local';
  readonly #replicas: number;

  constructor(store: SharedStore, fallback: 'refuse' | 'local', replicas: number) {
    this.#store = store;
    this.#fallback = fallback;
    this.#replicas = replicas;
  }

  async take(key: string, rate: Rate, nowMs: number): Promise<Taken> {
    if (this.#store.available) {
      try {
        // The key names client, secret and binding: hashed to a fixed length, the binding's limit in it so a
        // reload that changes the limit starts a new bucket rather than reading the old one's time in new units.
        const name = this.#store.key('rate', createHash('sha256').update(`${key}|${rate.count}/${rate.perMs}`).digest('base64url'));
        const waitMs = await this.#store.eval<number>(GCRA, [name], [rate.perMs / rate.count, rate.count]);
        return waitMs === 0 ? { ok: true } : { ok: false, retryAfterMs: waitMs };
      } catch (err) {
        if (!(err instanceof SharedStateUnavailable) || this.#fallback === 'refuse') throw err;
      }
    } else if (this.#fallback === 'refuse') {
      throw new SharedStateUnavailable('Redis is not connected');
    }
    const share = Math.floor(rate.count / this.#replicas);
    if (share === 0) return { ok: false, retryAfterMs: rate.perMs };
    return this.#local.take(key, { count: share, perMs: rate.perMs }, nowMs);
  }
}
