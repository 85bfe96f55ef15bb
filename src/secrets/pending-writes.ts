import { readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import type { SecretCache } from './cache.js';
import { Secret } from './secret.js';

/*
 * A refresh token the provider rotated is the only copy of a credential: most providers revoke the old one at
 * once, so dropping the new one because saving it failed (a full disk, the store's lock held by `keyswap secret set`)
 * locks the credential out for good. Writes keyswap makes on its own are therefore never dropped: a failed one is
 * kept in memory and in a private, fsynced file beside the store (`pending-writes.json`, 0600, only while a write is
 * pending), served as the current value, and retried until it lands; a restart picks it up again.
 */

/** Where, in the state directory, values waiting to be saved are kept. */
export const PENDING_WRITES_FILE = 'pending-writes.json';

/** How long a write waits for another writer's lock before it counts as failed (and is kept pending). */
const LOCK_WAIT_MS = 60_000;
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;

interface Pending { readonly value: Secret; readonly sinceMs: number }

export interface PendingSummary { readonly name: string; readonly since: string }

type Log = { warn(o: object, msg: string): void; info(o: object, msg: string): void };

export class PendingWrites {
  readonly #cache: SecretCache;
  readonly #file: string;
  readonly #log: Log;
  readonly #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | null = null;
  #delayMs = RETRY_FIRST_MS;
  #retrying: Promise<void> = Promise.resolve();
  readonly #turns = new Map<string, Promise<void>>();

  private constructor(cache: SecretCache, file: string, log: Log) {
    this.#cache = cache;
    this.#file = file;
    this.#log = log;
  }

  /** Opens the pending writes a previous run left (they are retried at once). */
  static async open(cache: SecretCache, file: string, log: Log): Promise<PendingWrites> {
    const w = new PendingWrites(cache, file, log);
    for (const [name, p] of await readPending(file)) w.#pending.set(name, p);
    if (w.#pending.size > 0) {
      log.warn({ names: [...w.#pending.keys()] }, 'values waiting to be saved from a previous run; retrying');
      w.#schedule(0);
    }
    return w;
  }

  /** The value in force: one waiting to be saved wins over what the backend still holds. */
  get(name: string): Promise<Secret> {
    const p = this.#pending.get(name);
    return p === undefined ? this.#cache.get(name) : Promise.resolve(p.value);
  }

  /** As get(), past the cache: a value waiting to be written is still newer than the backend's. */
  fresh(name: string): Promise<Secret> {
    const p = this.#pending.get(name);
    return p === undefined ? this.#cache.fresh(name) : Promise.resolve(p.value);
  }

  /**
   * Saves a value keyswap itself produced: 'written' once the backend has it, or 'pending' when it could not be
   * written now (kept, served and retried until it is). Never rejects for a failed write.
   */
  async store(name: string, value: Secret): Promise<'written' | 'pending'> {
    // The newest value is the one in force from now on, even while an older one's write still holds the lock.
    const entry: Pending = { value, sinceMs: this.#pending.get(name)?.sinceMs ?? Date.now() };
    this.#pending.set(name, entry);
    return this.#inTurn(name, async () => {
      // A newer value came meanwhile: that one is written in its turn, this one never after it.
      if (this.#pending.get(name) !== entry) return 'written';
      try {
        await this.#cache.store(name, value, { lockWaitMs: LOCK_WAIT_MS });
        if (this.#pending.get(name) === entry) this.#pending.delete(name);
        await this.#persist().catch(() => {});
        return 'written';
      } catch (err) {
        // The sidecar is best effort: on a full disk it cannot be written either, and the value lives in memory.
        await this.#persist().catch((e: unknown) => this.#log.warn({ name, code: (e as NodeJS.ErrnoException).code }, 'pending value could not be written beside the store; kept in memory'));
        this.#log.warn({ name, err: (err as Error).message }, 'value could not be saved; kept, and retried until it is');
        this.#delayMs = RETRY_FIRST_MS;
        this.#schedule(this.#delayMs);
        return 'pending';
      }
    });
  }

  /**
   * Writes of one name run one after another, each with the value in force when its turn comes: a retry of an
   * older value that waited for the lock can never land after a newer one.
   */
  #inTurn<T>(name: string, write: () => Promise<T>): Promise<T> {
    const turn = (this.#turns.get(name) ?? Promise.resolve()).then(write, write);
    const settled = turn.then(() => undefined, () => undefined);
    this.#turns.set(name, settled);
    void settled.then(() => { if (this.#turns.get(name) === settled) this.#turns.delete(name); });
    return turn;
  }

  /** What waits to be saved (names and since when, never values). */
  summary(): PendingSummary[] {
    return [...this.#pending].map(([name, p]) => ({ name, since: new Date(p.sinceMs).toISOString() }));
  }

  /** Stops retrying; what is pending stays in the file for the next run. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#retrying;
  }

  #schedule(ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#retrying = this.#retry();
    }, ms);
    this.#timer.unref();
  }

  async #retry(): Promise<void> {
    for (const name of [...this.#pending.keys()]) {
      await this.#inTurn(name, async () => {
        const p = this.#pending.get(name);
        if (p === undefined) return; // a newer value was written in the meantime
        try {
          await this.#cache.store(name, p.value, { lockWaitMs: LOCK_WAIT_MS });
          if (this.#pending.get(name) === p) this.#pending.delete(name);
          this.#log.info({ name }, 'pending value saved');
        } catch {
          // Kept: tried again later.
        }
      });
    }
    await this.#persist().catch(() => {});
    if (this.#pending.size > 0) {
      this.#delayMs = Math.min(this.#delayMs * 2, RETRY_MAX_MS);
      this.#schedule(this.#delayMs);
    }
  }

  async #persist(): Promise<void> {
    if (this.#pending.size === 0) {
      await unlink(this.#file).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err; });
      return;
    }
    const entries = Object.fromEntries([...this.#pending].map(([name, p]) => [name, { value: p.value.reveal(), since: new Date(p.sinceMs).toISOString() }]));
    await writeFileAtomic(this.#file, `${JSON.stringify({ version: 1, entries })}\n`, 0o600);
  }
}

/** The names and times of what waits in a pending-writes file (for doctor); values are never returned. */
export async function pendingSummary(file: string): Promise<PendingSummary[]> {
  return [...(await readPending(file))].map(([name, p]) => ({ name, since: new Date(p.sinceMs).toISOString() }));
}

async function readPending(file: string): Promise<Map<string, Pending>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const out = new Map<string, Pending>();
  let parsed: { entries?: Record<string, { value?: unknown; since?: unknown }> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new Error(`${file} is not keyswap's record of values waiting to be saved; move it away only if keyswap did not write it`);
  }
  for (const [name, e] of Object.entries(parsed.entries ?? {})) {
    if (typeof e.value === 'string') out.set(name, { value: new Secret(e.value), sinceMs: typeof e.since === 'string' ? Date.parse(e.since) : Date.now() });
  }
  return out;
}
