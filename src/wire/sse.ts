import { Transform, type TransformCallback } from 'node:stream';

/*
 * Server-sent events (the WHATWG HTML standard, §9.2): a stream of events, each a run of lines ended by a blank
 * line, lines ended by CRLF, LF or CR alone. keyswap reads them to filter what an MCP server's answers list; every
 * event it does not rewrite passes byte for byte.
 */

const LF = 0x0a;
const CR = 0x0d;

/**
 * A transform that hands each complete event (its bytes, up to and including the blank line) to `rewrite` and
 * passes what it returns. An event longer than `maxEventBytes` fails the stream: it cannot be read, and must not
 * be passed unread. `holding` is told what the stream holds after each chunk; false fails the stream too.
 */
export function sseEvents(rewrite: (event: Buffer) => Buffer, maxEventBytes: number, holding: (bytes: number) => boolean = () => true): Transform {
  let pending: Buffer = Buffer.alloc(0);
  /**
   * Where `pending` lives: a buffer grown by doubling, written only past `pending`'s end (an event handed out is a
   * view into it, never written over). Buffer.concat([pending, chunk]) copied the whole event so far for every
   * chunk: a 15 MiB event cost seconds of CPU.
   */
  let store: Buffer = Buffer.alloc(0);
  let storeStart = 0;
  const append = (chunk: Buffer): void => {
    const end = storeStart + pending.length;
    if (end + chunk.length > store.length) {
      const next = Buffer.allocUnsafe(Math.max(2 * (pending.length + chunk.length), 4096));
      pending.copy(next, 0);
      store = next;
      storeStart = 0;
    }
    chunk.copy(store, storeStart + pending.length);
    pending = store.subarray(storeStart, storeStart + pending.length + chunk.length);
  };
  /** Where scanning resumes, and where the current line began (both offsets into `pending`). */
  let scanned = 0;
  let lineStart = 0;
  const drain = (final: boolean): Buffer[] => {
    const out: Buffer[] = [];
    let eventStart = 0;
    let i = scanned;
    while (i < pending.length) {
      const b = pending[i];
      if (b !== LF && b !== CR) {
        i++;
        continue;
      }
      // A CR last in the buffer may be the first half of a CRLF: wait for the next byte.
      if (b === CR && i + 1 === pending.length && !final) break;
      const end = b === CR && pending[i + 1] === LF ? i + 2 : i + 1;
      if (i === lineStart) {
        out.push(rewrite(pending.subarray(eventStart, end)));
        eventStart = end;
      }
      lineStart = end;
      i = end;
    }
    pending = pending.subarray(eventStart);
    storeStart += eventStart;
    scanned = i - eventStart;
    lineStart -= eventStart;
    return out;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      append(chunk);
      const out = drain(false);
      if (pending.length > maxEventBytes) return done(new Error(`an event of over ${maxEventBytes} bytes`));
      for (const b of out) this.push(b);
      // What this stream holds now (the event being assembled, and what waits for the reader), for a caller's budget.
      if (!holding(pending.length + this.readableLength)) return done(new Error('too many events held at once'));
      done();
    },
    flush(done: TransformCallback) {
      for (const b of drain(true)) this.push(b);
      // An event the stream ended inside of is dropped by every reader (it never completed): passed as it is.
      if (pending.length > 0) this.push(pending);
      done();
    },
  });
}

/** An event's `data` (its data lines joined by LF, as a reader dispatches it), or null when it has none. */
export function eventData(event: Buffer): string | null {
  const lines = event.toString('utf8').split(/\r\n|\r|\n/);
  let data: string | null = null;
  for (const line of lines) {
    if (line !== 'data' && !line.startsWith('data:')) continue;
    const value = line.startsWith('data: ') ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}

/** The event with its data replaced by `data` (one line; LF-free JSON), its other fields kept in order. */
export function withData(event: Buffer, data: string): Buffer {
  const lines = event.toString('utf8').split(/\r\n|\r|\n/).filter((l) => l !== '');
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (line === 'data' || line.startsWith('data:')) {
      if (!placed) out.push(`data: ${data}`);
      placed = true;
    } else out.push(line);
  }
  return Buffer.from(`${out.join('\n')}\n\n`);
}
