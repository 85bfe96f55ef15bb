import { constants } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { GENESIS, headAfter, lineHash, type ChainHead } from './chain.js';
import { AuditWriteFailed } from './errors.js';
import { lockAuditLog } from './owner-lock.js';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from './events.js';

const LAZY_FLUSH_MS = 100;

/** Who wants to know what the writer does (metrics): every event appended, and how long each durable write took. */
export interface AuditObserver {
  event(event: AuditEvent): void;
  write(ms: number): void;
}

interface Pending { readonly line: string; readonly resolve: () => void; readonly reject: (e: Error) => void }

/**
 * The append-only JSONL audit log with group commit: events that arrive while one durable write is in flight
 * are written together by the next one, so N concurrent requests cost about one fsync, not N. append() resolves
 * only after the durable (O_DSYNC) write that covers its line (K5). Any write or sync failure poisons the writer: a record may
 * be half-written, so every later append fails at once and requests fail closed until restart (K4).
 */
export class AuditWriter {
  #fh: FileHandle;
  readonly #path: string;
  #head: ChainHead;
  readonly #maxBytes: number | null;
  #size: number;
  #queue: Pending[] = [];
  #syncing: Promise<void> | null = null;
  #failure: Error | null = null;
  #closed = false;
  #lazyTimer: NodeJS.Timeout | null = null;
  #batches = 0;
  #events = 0;
  readonly #observer: AuditObserver | null;
  readonly #unlock: () => Promise<void>;

  private constructor(fh: FileHandle, path: string, head: ChainHead, size: number, maxBytes: number | null, observer: AuditObserver | null, unlock: () => Promise<void>) {
    this.#observer = observer;
    this.#unlock = unlock;
    this.#fh = fh;
    this.#path = path;
    this.#head = head;
    this.#size = size;
    this.#maxBytes = maxBytes;
  }

  /**
   * Opens (creating 0600) the log for appending and continues the hash chain from its last complete line. A torn
   * last line (a write cut short by kill -9) is closed with a newline, so it stays visible as torn and the next
   * record starts clean. `continueFrom` links a fresh file to the previous one (rotation).
   * Refuses a file others can write: they could forge history.
   */
  static async open(path: string, opts: { maxBytes?: number | null; continueFrom?: ChainHead; observer?: AuditObserver } = {}): Promise<AuditWriter> {
    const fh = await openForAppend(path);
    let unlock: (() => Promise<void>) | null = null;
    try {
      unlock = await lockAuditLog(path);
      const { head, torn } = await readTail(fh);
      if (torn) await writeAll(fh, Buffer.from('\n'));
      const size = (await fh.stat()).size;
      return new AuditWriter(fh, path, head ?? opts.continueFrom ?? { seq: 0, hash: GENESIS }, size, opts.maxBytes ?? null, opts.observer ?? null, unlock);
    } catch (err) {
      await fh.close();
      await unlock?.();
      throw err instanceof AuditWriteFailed ? err : new AuditWriteFailed(path, { cause: err });
    }
  }

  /** The chain head: the seq and hash of the last record appended. */
  get head(): ChainHead { return this.#head; }

  /**
   * Rotation: after the operator (or logrotate) has moved the file away, start a new one at the same path whose
   * first record links to the last hash of the old one. Queued events are written to the old file first.
   */
  async reopen(): Promise<void> {
    while (this.#syncing) await this.#syncing;
    await this.#swapFile();
  }

  async #swapFile(): Promise<void> {
    const next = await openForAppend(this.#path);
    const { head } = await readTail(next);
    await this.#fh.close();
    this.#fh = next;
    this.#size = (await next.stat()).size;
    if (head !== null) this.#head = head; // the path was not moved: carry on in the same file
  }

  /** Size rotation: the full file moves to `<path>.<timestamp>` and a linked one starts at the path. */
  async #rotateIfFull(): Promise<void> {
    if (this.#maxBytes === null || this.#size < this.#maxBytes) return;
    await rename(this.#path, `${this.#path}.${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await this.#swapFile();
  }

  get isHealthy(): boolean { return this.#failure === null && !this.#closed; }
  get stats(): { batches: number; events: number } { return { batches: this.#batches, events: this.#events }; }

  /**
   * Appends an event that nothing waits on (a response summary, a passthrough): it is written with the next
   * durable append's batch, or within LAZY_FLUSH_MS, so a request costs one fsync, not two. Measured: at
   * concurrency 1 the second fsync per injected request cost about 0.8 ms of added latency (bench/run.mjs).
   */
  appendLazy(event: AuditEvent): Promise<void> {
    return this.#enqueue(event, false);
  }

  append(event: AuditEvent): Promise<void> {
    return this.#enqueue(event, true);
  }

  #enqueue(event: AuditEvent, durableNow: boolean): Promise<void> {
    if (this.#closed) return Promise.reject(new AuditWriteFailed(`${this.#path} (closed)`));
    if (this.#failure) return Promise.reject(new AuditWriteFailed(this.#path, { cause: this.#failure }));
    // Order matters: seq and prev are assigned here, synchronously, in the same order the queue writes lines.
    const text = JSON.stringify({ ts: new Date().toISOString(), v: AUDIT_SCHEMA_VERSION, seq: this.#head.seq + 1, prev: this.#head.hash, ...event });
    this.#head = { seq: this.#head.seq + 1, hash: lineHash(text) };
    const line = `${text}\n`;
    this.#observer?.event(event);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      if (durableNow) this.#kick();
      else this.#lazyTimer ??= setTimeout(() => {
        this.#lazyTimer = null;
        this.#kick();
      }, LAZY_FLUSH_MS).unref();
    });
  }

  /** Starts the drain loop unless it runs already; whatever arrives while it finishes starts the next one. */
  #kick(): void {
    if (this.#syncing !== null || this.#queue.length === 0) return;
    this.#syncing = this.#drain().finally(() => {
      this.#syncing = null;
      this.#kick();
    });
  }

  /** Writes batches until the queue is empty; runs as a single loop so batches never interleave. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        if (this.#failure) throw this.#failure;
        const bytes = Buffer.from(batch.map((p) => p.line).join(''));
        const started = performance.now();
        await writeAll(this.#fh, bytes); // O_DSYNC: the write returns once the data is on disk
        this.#observer?.write(performance.now() - started);
        this.#size += bytes.length;
        this.#batches++;
        this.#events += batch.length;
        for (const p of batch) p.resolve();
        await this.#rotateIfFull();
      } catch (err) {
        this.#failure ??= err as Error;
        for (const p of batch) p.reject(new AuditWriteFailed(this.#path, { cause: this.#failure }));
      }
    }
  }

  /** Idempotent: stops accepting, waits for queued events to be synced, closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    this.#kick();
    while (this.#syncing) await this.#syncing;
    await this.#fh.close();
    await this.#unlock();
  }
}

async function openForAppend(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    // O_DSYNC makes each write(2) return only once its data is durable, like write + fdatasync, in one call: one
    // trip through libuv's threadpool per batch instead of two (measured: docs/performance.md).
    fh = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ': its directory does not exist' : code === 'EACCES' ? ': permission denied' : '';
    throw new AuditWriteFailed(`${path}${hint}`, { cause: err });
  }
  const mode = (await fh.stat()).mode;
  if ((mode & 0o022) !== 0) {
    await fh.close();
    throw new AuditWriteFailed(`${path} is writable by group or others (run: chmod 600 ${path})`);
  }
  return fh;
}

/** The head of the chain at the end of the file (null when empty) and whether the last line is torn. */
async function readTail(fh: FileHandle): Promise<{ head: ChainHead | null; torn: boolean }> {
  const size = (await fh.stat()).size;
  if (size === 0) return { head: null, torn: false };
  // Records are short; 256 KiB always holds the last complete line and any torn fragment after it.
  const length = Math.min(size, 256 * 1024);
  const buf = Buffer.alloc(length);
  await fh.read(buf, 0, length, size - length);
  const text = buf.toString('utf8');
  const torn = !text.endsWith('\n');
  const body = torn ? text.slice(0, text.lastIndexOf('\n') + 1) : text;
  const lines = body.split('\n');
  lines.pop();
  const last = lines.pop();
  return { head: last === undefined ? null : headAfter(last), torn };
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  // A short write is legal (a signal, a size limit): keep going until every byte is down or the kernel says no.
  while (offset < buf.length) {
    const { bytesWritten } = await fh.write(buf, offset, buf.length - offset);
    offset += bytesWritten;
  }
}
