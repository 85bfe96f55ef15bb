// One file, past the ~300 lines the project aims at, on purpose: every method here moves the same state
// together (the open file and its identity, the chain head, the records owed to the log, the outage) and must do
// it inside the one queue (#drain, #exclusive), so that a batch, a followed path, a rotation and a recovery never
// interleave. Split by method, each part would need that state handed to it and the queue's rule restated. What
// stands alone already lives beside it: the lines (lines.ts), file I/O (log-file.ts), the owner lock, rotation
// names and the chain.
import { statSync } from 'node:fs';
import { rename, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { GENESIS, type AuditKey, type ChainHead } from './chain.js';
import { AuditLogBusy, AuditWriteFailed } from './errors.js';
import type { AuditEvent } from './events.js';
import { chain, entry, tornNotices, type Chained, type Entry } from './lines.js';
import { errnoCode, openForAppend, readTail, writeAll } from './log-file.js';
import { lockAuditLog } from './owner-lock.js';
import { rotatedPath } from './rotation.js';

const LAZY_FLUSH_MS = 100;
/** After a failed write, the first retry waits this long; each failed retry doubles it, up to the max. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/** Who wants to know what the writer does (metrics): every event appended, and how long each durable write took. */
export interface AuditObserver {
  event(event: AuditEvent): void;
  write(ms: number): void;
  /** The lines a write put on disk, complete records only (the OCSF copy). */
  lines?(text: string): void;
}

/** An entry and the append waiting on it. */
interface Pending extends Entry { readonly resolve: () => void; readonly reject: (e: Error) => void }

/** The file we hold open, as the kernel names it: the path holds it while stat(path) shows the same pair. */
interface FileId { readonly dev: bigint; readonly ino: bigint }

/** Writes are failing: set by the first failed write, cleared by the first write that succeeds after it. */
interface Outage {
  readonly cause: Error;
  readonly code: string;
  readonly sinceMs: number;
  /** Events refused since it began: the gap record reports them (they never got a seq). */
  refused: number;
  delayMs: number;
  timer: NodeJS.Timeout | null;
  /** The head after each line of the write that failed: those of its lines that reached the file whole are in the chain. */
  unconfirmed: readonly ChainHead[];
}

export interface AuditWriterOptions {
  /** The chain's MAC key (chain.ts), kept where the agent cannot read it. */
  key: AuditKey;
  maxBytes?: number | null;
  /**
   * The head last recorded outside the log (head-mark.ts). An empty file continues from it (the log was rotated
   * while keyswap was stopped); a file that ends before it gets an `audit_tail_cut` record first.
   */
  lastHead?: ChainHead | null;
  observer?: AuditObserver;
  /** Retry delays after a failed write: the first, and the cap it doubles up to (default 1 s → 30 s). */
  retry?: { readonly firstMs: number; readonly maxMs: number };
  /** Every record's `chain_id` (lines.ts chainIdOf); none when null. */
  chainId?: string | null;
}

/**
 * The append-only JSONL audit log with group commit: events that arrive while one durable write is in flight
 * are written together by the next one, so N concurrent requests cost about one fsync, not N. append() resolves
 * only after the durable (O_DSYNC) write that covers its line (K5).
 *
 * Lifecycle: healthy → (a write fails) → outage → (a retried write succeeds) → healthy; close() from either.
 * During an outage every append is refused at once, so requests fail closed (K4), and a timer retries with a
 * bounded backoff. The retry writes an `audit_recovered` gap record on a fresh line, continuing the chain from
 * the last record that reached the file whole, so a torn fragment stays visible as torn and verify finds no gap.
 *
 * Before each batch the writer checks that the file at the path is still the one it holds; if it was deleted or
 * replaced, it reopens the path and writes an `audit_file_replaced` record first, linked to its own head (K6).
 */
export class AuditWriter {
  #fh: FileHandle;
  #fileId: FileId;
  readonly #path: string;
  /** The last record known to be in the file: advanced only after the write that holds it succeeded. */
  #head: ChainHead;
  readonly #maxBytes: number | null;
  #size: number;
  #queue: Pending[] = [];
  /** Records the writer owes the log (a replaced file): written before the next batch, kept until a write holds them. */
  #notices: Entry[] = [];
  #syncing: Promise<void> | null = null;
  #outage: Outage | null = null;
  #closed = false;
  #lazyTimer: NodeJS.Timeout | null = null;
  #batches = 0;
  #events = 0;
  readonly #retry: { readonly firstMs: number; readonly maxMs: number };
  readonly #observer: AuditObserver | null;
  readonly #unlock: () => Promise<void>;
  readonly #key: AuditKey;
  readonly #chainId: string | null;

  private constructor(fh: FileHandle, fileId: FileId, path: string, head: ChainHead, size: number, opts: AuditWriterOptions, unlock: () => Promise<void>) {
    this.#observer = opts.observer ?? null;
    this.#unlock = unlock;
    this.#key = opts.key;
    this.#chainId = opts.chainId ?? null;
    this.#fh = fh;
    this.#fileId = fileId;
    this.#path = path;
    this.#head = head;
    this.#size = size;
    this.#maxBytes = opts.maxBytes ?? null;
    this.#retry = opts.retry ?? { firstMs: RETRY_FIRST_MS, maxMs: RETRY_MAX_MS };
  }

  /**
   * Opens (creating 0600) the log for appending and continues the hash chain from its last complete line. A torn
   * last line (a write cut short by kill -9) is closed with a newline, so it stays visible as torn and the next
   * record starts clean, with an audit_torn_line record vouching for it when it can be the start of the record
   * keyswap was writing (anything else was put there, and stays unvouched). See `lastHead` for what a cut tail
   * leaves. Refuses a file others can write: they could forge history.
   */
  static async open(path: string, opts: AuditWriterOptions): Promise<AuditWriter> {
    const fh = await openForAppend(path);
    let unlock: (() => Promise<void>) | null = null;
    try {
      unlock = await lockAuditLog(path);
      const { head, fragment } = await readTail(fh);
      if (fragment !== null) await writeAll(fh, Buffer.from('\n'));
      const st = await fh.stat({ bigint: true });
      const last = opts.lastHead ?? null;
      const writer = new AuditWriter(fh, { dev: st.dev, ino: st.ino }, path, head ?? last ?? { seq: 0, hash: GENESIS }, Number(st.size), opts, unlock);
      if (head !== null && last !== null && (head.seq < last.seq || (head.seq === last.seq && head.hash !== last.hash))) {
        writer.#notices.push(entry({ type: 'audit_tail_cut', expected_seq: last.seq, found_seq: head.seq }));
      }
      writer.#notices.push(...tornNotices(fragment, head));
      return writer;
    } catch (err) {
      await fh.close();
      await unlock?.();
      throw err instanceof AuditWriteFailed || err instanceof AuditLogBusy ? err : new AuditWriteFailed(path, { cause: err });
    }
  }

  /** The chain head: the seq and hash of the last record written (queued events have no seq yet). */
  get head(): ChainHead { return this.#head; }

  /**
   * Rotation: after the operator (or logrotate) has moved the file away, start a new one at the same path whose
   * first record links to the last hash of the old one. A batch written between the move and this call has
   * already followed the path itself (#followPath, with an audit_file_replaced record, which verify reports as a
   * benign file_moved); this makes an idle writer follow it without one. During an outage it retries the write now
   * instead (the operator has just made room, or moved the full file away).
   */
  async reopen(): Promise<void> {
    await this.#exclusive(async () => {
      if (this.#closed) return;
      if (this.#outage !== null) return this.#recover();
      const at = statSync(this.#path, { bigint: true, throwIfNoEntry: false });
      if (at !== undefined && at.dev === this.#fileId.dev && at.ino === this.#fileId.ino) return; // not moved: carry on
      const { foundBytes, foundHead, torn, oldFile } = await this.#swapFile();
      // An empty (or new) file is the rotation asked for, and so is a copy that ends at our head. Anything else was
      // put there by someone: say so, and link to our own head rather than adopt the head of what we found.
      const continuesOurs = foundHead !== null && foundHead.hash === this.#head.hash;
      if (foundBytes > 0 && !continuesOurs) this.#notices.push(entry({ type: 'audit_file_replaced', reason: 'replaced', old_file: oldFile }));
      this.#notices.push(...torn);
    });
  }

  /**
   * Makes the file at the path the one we write (opening it, creating 0600), closing the old one. The chain goes
   * on from our head whatever the new file holds; a torn last line in it is closed with a newline.
   */
  async #swapFile(): Promise<{ foundBytes: number; foundHead: ChainHead | null; torn: Entry[]; oldFile: 'linked' | 'unlinked' }> {
    const next = await openForAppend(this.#path);
    let found: { readonly bytes: number; readonly head: ChainHead | null; readonly fragment: string | null; readonly id: FileId; readonly size: number };
    try {
      const { head, fragment } = await readTail(next);
      const bytes = Number((await next.stat({ bigint: true })).size);
      if (fragment !== null) await writeAll(next, Buffer.from('\n'));
      const st = await next.stat({ bigint: true });
      found = { bytes, head, fragment, id: { dev: st.dev, ino: st.ino }, size: Number(st.size) };
    } catch (err) {
      await next.close();
      throw err;
    }
    const old = await this.#fh.stat({ bigint: true });
    // A write cut short may have left part of a line at the end of the file we leave: vouch for it in the next.
    const oldTail = await readTail(this.#fh).catch(() => ({ head: null, fragment: null }));
    await this.#fh.close();
    this.#fh = next;
    this.#fileId = found.id;
    this.#size = found.size;
    // Records vouching for incomplete lines (audit_torn_line) come after any audit_file_replaced record: that one
    // must be the first the writer puts in a file it found, or verify could not tell its records from the file's.
    const torn = [...tornNotices(oldTail.fragment, oldTail.head), ...tornNotices(found.fragment, found.head)];
    return { foundBytes: found.bytes, foundHead: found.head, torn, oldFile: old.nlink > 0n ? 'linked' : 'unlinked' };
  }

  /**
   * K6: is the file at the path still ours? If not, follow the path and owe the log an `audit_file_replaced`
   * record. Runs once per batch (a group commit), never per event. Same dev+ino at the path proves both "ours"
   * and "still linked" (nlink > 0), so no fstat is needed: our open fd pins the inode, so its number cannot be
   * reused by another file while we hold it. statSync, not the promise form: measured here, a stat costs 4–10 µs
   * of event-loop time against 40–50 µs of added latency per batch through libuv's threadpool, beside an O_DSYNC
   * write of 0.4–3 ms on ext4; the path's metadata is cached, so it does no disk I/O. (Best of 12 runs of 5000
   * one-event batches on tmpfs, where the write is nearly free: 31.4 µs per batch before, 37.1 µs with the check.)
   * A deletion between this stat and the write costs that one batch: it lands in the unlinked file, and the next
   * batch follows the path. Returns whether it swapped files.
   */
  async #followPath(): Promise<boolean> {
    const at = statSync(this.#path, { bigint: true, throwIfNoEntry: false });
    if (at !== undefined && at.dev === this.#fileId.dev && at.ino === this.#fileId.ino) return false;
    const { foundBytes, torn, oldFile } = await this.#swapFile();
    this.#notices.push(entry({ type: 'audit_file_replaced', reason: at === undefined && foundBytes === 0 ? 'deleted' : 'replaced', old_file: oldFile }), ...torn);
    return true;
  }

  /** Size rotation: the full file moves to `<path>.<timestamp>` and a linked one starts at the path. */
  async #rotateIfFull(): Promise<void> {
    if (this.#maxBytes === null || this.#size < this.#maxBytes) return;
    await rename(this.#path, rotatedPath(this.#path, new Date()));
    this.#notices.push(...(await this.#swapFile()).torn);
  }

  /** False during an outage (writes failing: every append is refused) and after close(). */
  get isHealthy(): boolean { return this.#outage === null && !this.#closed; }
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
    if (this.#outage) {
      this.#outage.refused++;
      return Promise.reject(new AuditWriteFailed(this.#path, { cause: this.#outage.cause }));
    }
    const { ts, body } = entry(event);
    this.#observer?.event(event);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ts, body, resolve, reject });
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

  /** Runs `work` alone: after any drain in flight, and holding off the next one until it ends. */
  async #exclusive(work: () => Promise<void>): Promise<void> {
    while (this.#syncing) await this.#syncing;
    const run = work();
    // The caller sees a failure through `run`; the queue only needs to know when it ends.
    this.#syncing = run.then(() => undefined, () => undefined).finally(() => {
      this.#syncing = null;
      this.#kick();
    });
    return run;
  }

  /** Writes batches until the queue is empty; runs as a single loop so batches never interleave. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && this.#outage === null) {
      const batch = this.#queue;
      this.#queue = [];
      let lines: Chained = { text: '', heads: [] };
      try {
        await this.#followPath();
        // Order matters: seq and prev are given here, in the order lines reach the file, from the last record
        // known to be there, so a failed write never leaves the chain pointing past what was written.
        lines = chain(this.#key, this.#head, [...this.#notices, ...batch], this.#chainId);
        const bytes = Buffer.from(lines.text);
        const started = performance.now();
        await writeAll(this.#fh, bytes); // O_DSYNC: the write returns once the data is on disk
        this.#observer?.write(performance.now() - started);
        this.#observer?.lines?.(lines.text);
        this.#size += bytes.length;
      } catch (err) {
        this.#fail(err, batch, lines.heads);
        return;
      }
      this.#head = lines.heads.at(-1) ?? this.#head;
      this.#events += lines.heads.length;
      this.#notices = [];
      this.#batches++;
      for (const p of batch) p.resolve();
      try {
        await this.#rotateIfFull();
      } catch (err) {
        this.#fail(err, [], []);
        return;
      }
    }
  }

  /**
   * Begins an outage: the batch whose write failed and everything queued behind it are refused (their requests
   * fail closed, K4), and the first retry is scheduled.
   */
  #fail(err: unknown, batch: readonly Pending[], unconfirmed: readonly ChainHead[]): void {
    const cause = err instanceof Error ? err : new Error(String(err));
    const refused = [...batch, ...this.#queue];
    this.#queue = [];
    this.#outage = { cause, code: errnoCode(cause), sinceMs: Date.now(), refused: refused.length, delayMs: this.#retry.firstMs, timer: null, unconfirmed };
    for (const p of refused) p.reject(new AuditWriteFailed(this.#path, { cause }));
    this.#scheduleRetry(this.#outage);
  }

  #scheduleRetry(outage: Outage): void {
    if (this.#closed) return;
    // unref: a pending retry never keeps the process alive; close() clears it.
    outage.timer = setTimeout(() => {
      outage.timer = null;
      void this.#exclusive(() => this.#recover());
    }, outage.delayMs).unref();
  }

  /**
   * One retry: follow the path (a full disk is often fixed by moving the log away), then write the gap record on
   * a fresh line. Never rejects: a failed retry schedules the next one, twice as far off, up to the cap.
   */
  async #recover(): Promise<void> {
    const outage = this.#outage;
    if (outage === null || this.#closed) return;
    if (outage.timer !== null) clearTimeout(outage.timer);
    outage.timer = null;
    let lines: Chained = { text: '', heads: [] };
    try {
      const swapped = await this.#followPath();
      let from = this.#head;
      let prefix = '';
      const torn: Entry[] = [];
      if (!swapped) {
        const tail = await readTail(this.#fh);
        // Lines of the failed write that reached the file whole are records: the chain goes on after them. Any
        // other tail (the file cut short meanwhile) is not ours to adopt: we go on from our head and verify says
        // what is missing.
        const tailHead = tail.head;
        if (tailHead !== null && outage.unconfirmed.some((h) => h.hash === tailHead.hash)) from = tailHead;
        // K6: the failed write may have left part of a line; the gap record starts on a fresh one.
        if (tail.fragment !== null) {
          prefix = '\n';
          torn.push(...tornNotices(tail.fragment, tail.head));
        }
      }
      const gap = entry({ type: 'audit_recovered', refused: outage.refused, code: outage.code, down_ms: Date.now() - outage.sinceMs });
      lines = chain(this.#key, from, [...this.#notices, ...torn, gap], this.#chainId);
      const bytes = Buffer.from(prefix + lines.text);
      await writeAll(this.#fh, bytes);
      this.#observer?.lines?.(lines.text);
      this.#size += bytes.length;
    } catch {
      // Still failing: the outage and the cause that began it stand; only the schedule moves.
      outage.unconfirmed = lines.heads;
      outage.delayMs = Math.min(outage.delayMs * 2, this.#retry.maxMs);
      this.#scheduleRetry(outage);
      return;
    }
    this.#head = lines.heads.at(-1) ?? this.#head;
    this.#events += lines.heads.length;
    this.#batches++;
    this.#notices = [];
    this.#outage = null;
  }

  /** Idempotent: stops accepting, waits for queued events to be synced, closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    if (this.#outage?.timer) clearTimeout(this.#outage.timer);
    this.#kick();
    while (this.#syncing) await this.#syncing;
    await this.#fh.close();
    await this.#unlock();
  }
}

