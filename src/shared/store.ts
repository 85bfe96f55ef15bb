import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { SharedStateSpec } from '../config/index.js';
import type { Logger } from '../log.js';
import { SharedStateUnavailable } from '../usage/index.js';

/** A Lua script run atomically by Redis: sent once by its SHA-1 (EVALSHA), in full only when Redis does not know it. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** A command that has not answered in this long is a Redis that cannot answer: the request is not held for it. */
const COMMAND_TIMEOUT_MS = 1_000;

/**
 * keyswap's one connection to the shared Redis: opened at start (ioredis, loaded only when `shared_state:` is
 * configured), reconnected on its own while keyswap runs. A command never waits for a connection: with Redis
 * unreachable it fails at once (no offline queue), as SharedStateUnavailable, and the caller refuses or falls back.
 * Transitions are told to `onState` once each (logged and audited by the runtime).
 */
export class SharedStore {
  readonly #redis: RedisClient;
  readonly #prefix: string;
  #available = false;
  onState: (available: boolean, why: string | null) => void = () => {};

  private constructor(redis: RedisClient, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
    redis.on('ready', () => this.#set(true, null));
    redis.on('error', (err: Error) => this.#set(false, describe(err)));
    redis.on('close', () => this.#set(false, 'connection closed'));
  }

  /** Connects (waiting up to `waitMs` for the first answer); an unreachable Redis is reported, not fatal. */
  static async open(spec: SharedStateSpec['redis'], password: string | null, log: Logger, waitMs = 3_000): Promise<SharedStore> {
    const { Redis } = await import('ioredis');
    const options: RedisOptions = {
      host: spec.host,
      port: spec.port,
      db: spec.db,
      ...(spec.username === null ? {} : { username: spec.username }),
      ...(password === null ? {} : { password }),
      ...(spec.tls === null ? {} : { tls: { ...(spec.tls.caFile === null ? {} : { ca: await readFile(spec.tls.caFile, 'utf8') }), ...(spec.tls.serverName === null ? {} : { servername: spec.tls.serverName }), rejectUnauthorized: true } }),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2_000,
      // Forever, at most every 2 s: Redis coming back is noticed within that.
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 2_000),
      lazyConnect: true,
    };
    const redis = new Redis(options);
    const store = new SharedStore(redis, spec.prefix);
    const ready = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, waitMs);
      redis.once('ready', () => { clearTimeout(t); resolve(); });
    });
    redis.connect().catch((err: Error) => log.warn({ redis: `${spec.host}:${spec.port}`, why: describe(err) }, 'shared state: Redis is not answering yet; retrying'));
    await ready;
    return store;
  }

  get available(): boolean {
    return this.#available;
  }

  /** A key of this deployment: the prefix, then the parts. */
  key(...parts: readonly (string | number)[]): string {
    return `${this.#prefix}${parts.join(':')}`;
  }

  async eval<T>(s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<T> {
    return this.#call(async () => {
      try {
        return (await this.#redis.evalsha(s.sha, keys.length, ...keys, ...args)) as T;
      } catch (err) {
        if (!/NOSCRIPT/.test((err as Error).message)) throw err;
        return (await this.#redis.eval(s.source, keys.length, ...keys, ...args)) as T;
      }
    });
  }

  get(key: string): Promise<string | null> {
    return this.#call(() => this.#redis.get(key));
  }

  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.length === 0 ? Promise.resolve([]) : this.#call(() => this.#redis.mget(...keys));
  }

  /** SET key value NX PX ms: true when this call set it. */
  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.#call(() => this.#redis.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'))) === 'OK';
  }

  async setUntil(key: string, value: string, untilMs: number): Promise<void> {
    await this.#call(() => this.#redis.set(key, value, 'PXAT', Math.ceil(untilMs)));
  }

  async close(): Promise<void> {
    this.onState = () => {};
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #call<T>(run: () => Promise<T>): Promise<T> {
    if (!this.#available) throw new SharedStateUnavailable('Redis is not connected');
    try {
      return await run();
    } catch (err) {
      throw new SharedStateUnavailable(`Redis: ${describe(err as Error)}`, { cause: err });
    }
  }

  #set(available: boolean, why: string | null): void {
    if (available === this.#available) return;
    this.#available = available;
    this.onState(available, why);
  }
}

/** Redis's words, without anything a reply could carry: the error's code or its first line, bounded. */
function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code ?? err.message.split('\n')[0] ?? 'error').slice(0, 120);
}
