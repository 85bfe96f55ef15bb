import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { AuditWriteFailed } from './errors.js';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from './events.js';

interface Pending { readonly line: string; readonly resolve: () => void; readonly reject: (e: Error) => void }

/**
 * The append-only JSONL audit log with group commit: events that arrive while one write+fdatasync is in flight
 * are written together by the next one, so N concurrent requests cost about one fsync, not N. append() resolves
 * only after the fdatasync that covers its line (K5). Any write or sync failure poisons the writer: a record may
 * be half-written, so every later append fails at once and requests fail closed until restart (K4).
 */
export class AuditWriter {
  readonly #fh: FileHandle;
  readonly #path: string;
  #queue: Pending[] = [];
  #syncing: Promise<void> | null = null;
  #failure: Error | null = null;
  #closed = false;
  #batches = 0;
  #events = 0;

  private constructor(fh: FileHandle, path: string) {
    this.#fh = fh;
    this.#path = path;
  }

  /** Opens (creating 0600) the log for appending. Refuses a file others can write: they could forge history. */
  static async open(path: string): Promise<AuditWriter> {
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const hint = code === 'ENOENT' ? ': its directory does not exist' : code === 'EACCES' ? ': permission denied' : '';
      throw new AuditWriteFailed(`${path}${hint}`, { cause: err });
    }
    const mode = (await stat(path)).mode;
    if ((mode & 0o022) !== 0) {
      await fh.close();
      throw new AuditWriteFailed(`${path} is writable by group or others (run: chmod 600 ${path})`);
    }
    return new AuditWriter(fh, path);
  }

  get isHealthy(): boolean { return this.#failure === null && !this.#closed; }
  get stats(): { batches: number; events: number } { return { batches: this.#batches, events: this.#events }; }

  append(event: AuditEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new AuditWriteFailed(`${this.#path} (closed)`));
    if (this.#failure) return Promise.reject(new AuditWriteFailed(this.#path, { cause: this.#failure }));
    const line = `${JSON.stringify({ ts: new Date().toISOString(), v: AUDIT_SCHEMA_VERSION, ...event })}\n`;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      this.#syncing ??= this.#drain();
    });
  }

  /** Writes batches until the queue is empty; runs as a single loop so batches never interleave. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        if (this.#failure) throw this.#failure;
        await writeAll(this.#fh, Buffer.from(batch.map((p) => p.line).join('')));
        await this.#fh.datasync();
        this.#batches++;
        this.#events += batch.length;
        for (const p of batch) p.resolve();
      } catch (err) {
        this.#failure ??= err as Error;
        for (const p of batch) p.reject(new AuditWriteFailed(this.#path, { cause: this.#failure }));
      }
    }
    this.#syncing = null;
  }

  /** Idempotent: stops accepting, waits for queued events to be synced, closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#syncing) await this.#syncing;
    await this.#fh.close();
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  // A short write is legal (a signal, a size limit): keep going until every byte is down or the kernel says no.
  while (offset < buf.length) {
    const { bytesWritten } = await fh.write(buf, offset, buf.length - offset);
    offset += bytesWritten;
  }
}
