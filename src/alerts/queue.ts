import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';

export const ALERT_QUEUE_FILE = 'alerts-queue.json';

const item = z.object({ id: z.string(), event: z.string(), url: z.string(), body: z.string(), attempts: z.number().int().nonnegative(), first_at: z.number(), next_at: z.number() });
export type QueuedAlert = z.infer<typeof item>;
const fileSchema = z.object({ version: z.literal(1), items: z.array(item) });

/**
 * Alerts not yet delivered, one per (alert, webhook), kept in `state_dir/alerts-queue.json` (0600, atomic writes,
 * folded like the usage file's) so a restart delivers what it had not. An item leaves when delivered or dropped.
 */
export class AlertQueue {
  readonly #file: string;
  #items: QueuedAlert[] = [];
  #writing: Promise<void> | null = null;
  #again = false;

  private constructor(file: string) {
    this.#file = file;
  }

  static async open(stateDir: string): Promise<AlertQueue> {
    const q = new AlertQueue(path.join(stateDir, ALERT_QUEUE_FILE));
    const text = await readFile(q.#file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw new Error(`cannot read ${q.#file} (${err.code ?? 'error'})`);
    });
    if (text !== null) {
      const parsed = fileSchema.safeParse((() => { try { return JSON.parse(text) as unknown; } catch { return null; } })());
      if (!parsed.success) throw new Error(`${q.#file} is not keyswap's alert queue (damaged?); move it away to start with an empty queue`);
      q.#items = parsed.data.items;
    }
    return q;
  }

  get items(): readonly QueuedAlert[] { return this.#items; }

  add(item: QueuedAlert): void {
    this.#items.push(item);
    this.#save();
  }

  update(id: string, url: string, change: Partial<QueuedAlert> | null): void {
    const i = this.#items.findIndex((x) => x.id === id && x.url === url);
    if (i < 0) return;
    if (change === null) this.#items.splice(i, 1);
    else this.#items[i] = { ...(this.#items[i] as QueuedAlert), ...change };
    this.#save();
  }

  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  #save(): void {
    if (this.#writing !== null) {
      this.#again = true;
      return;
    }
    this.#writing = writeFileAtomic(this.#file, `${JSON.stringify({ version: 1, items: this.#items })}\n`, 0o600).catch(() => {}).finally(() => {
      this.#writing = null;
      if (this.#again) {
        this.#again = false;
        this.#save();
      }
    });
  }
}
