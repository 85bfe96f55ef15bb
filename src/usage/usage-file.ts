import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import type { Logger } from '../log.js';
import type { QuotaState } from './meter.js';

export const USAGE_FILE = 'usage.json';

const fileSchema = z.object({
  version: z.literal(1),
  quotas: z.record(z.string(), z.object({ period: z.string(), period_start: z.string(), period_end: z.string(), used: z.number().int().nonnegative(), limit: z.number().int().positive(), state: z.string() })),
});
export type UsageFile = z.infer<typeof fileSchema>;

/** The counts a running keyswap last wrote, by quota (empty when there is no file yet). A damaged file is an error. */
export async function readUsageFile(stateDir: string): Promise<UsageFile['quotas']> {
  const file = path.join(stateDir, USAGE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const parsed = fileSchema.safeParse((() => { try { return JSON.parse(text) as unknown; } catch { return null; } })());
  if (!parsed.success) throw new Error(`${file} is not keyswap's usage file (damaged?); remove it to start the counts over`);
  return parsed.data.quotas;
}

export function restoredCounts(quotas: UsageFile['quotas']): Map<string, { period: string; periodStartMs: number; used: number }> {
  return new Map(Object.entries(quotas).map(([name, q]) => [name, { period: q.period, periodStartMs: Date.parse(q.period_start), used: q.used }]));
}

/**
 * Writes of usage.json start at most this often: each is an fsynced atomic replace, and one per counted request
 * cost a request at concurrency 1 more than its own audit record did (bench/paired.mjs, features configured).
 */
const MIN_WRITE_INTERVAL_MS = 1_000;

/**
 * Keeps `state_dir/usage.json` in step with the meter: a change schedules one atomic write (fsynced, renamed into
 * place), at most one a second; changes that come meanwhile are folded into the next one. A restart reads it back
 * (a stop writes what is pending first); a crash can lose the last second's uses. The audit log still has each.
 */
export class UsageFileWriter {
  readonly #file: string;
  readonly #states: () => readonly QuotaState[];
  readonly #log: Logger;
  #writing: Promise<void> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | null = null;
  #lastStartMs = Number.NEGATIVE_INFINITY;

  constructor(stateDir: string, states: () => readonly QuotaState[], log: Logger) {
    this.#file = path.join(stateDir, USAGE_FILE);
    this.#states = states;
    this.#log = log;
  }

  changed(): void {
    // A scheduled write reads the counts when it starts: this change is in it.
    if (this.#timer !== null) return;
    if (this.#writing !== null) {
      this.#again = true;
      return;
    }
    const wait = this.#lastStartMs + MIN_WRITE_INTERVAL_MS - Date.now();
    if (wait <= 0) return this.#start();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#start();
    }, wait);
    this.#timer.unref();
  }

  #start(): void {
    this.#lastStartMs = Date.now();
    this.#writing = this.#write().finally(() => {
      this.#writing = null;
      if (this.#again) {
        this.#again = false;
        this.changed();
      }
    });
  }

  /** Writes what is pending now and waits for it (shutdown). */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#timer !== null) {
        clearTimeout(this.#timer);
        this.#timer = null;
        if (this.#writing === null) this.#start();
        else this.#again = true;
      }
      if (this.#writing === null) return;
      await this.#writing;
    }
  }

  async #write(): Promise<void> {
    const doc: UsageFile = {
      version: 1,
      quotas: Object.fromEntries(this.#states().map((s) => [s.name, { period: s.period, period_start: new Date(s.periodStartMs).toISOString(), period_end: new Date(s.periodEndMs).toISOString(), used: s.used, limit: s.limit, state: s.state }])),
    };
    await writeFileAtomic(this.#file, `${JSON.stringify(doc, null, 1)}\n`, 0o600).catch((err: Error) => {
      this.#log.error({ err: err.message, file: this.#file }, 'usage counts could not be saved; a restart would start them from the last saved copy');
    });
  }
}
