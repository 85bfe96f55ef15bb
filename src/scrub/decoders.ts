import { Duplex, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';

/** A response whose body keyswap cannot read, so cannot scrub: it must not reach the agent. */
export class UnreadableResponse extends Error {
  override readonly name = 'UnreadableResponse';
  constructor(readonly why: string) {
    super(`response body cannot be scrubbed: ${why}`);
  }
}

/**
 * The decoder for a response's content codings, or null for none. keyswap asks for the codings it can undo; a
 * response in any other (zstd, stacked `gzip, gzip`, a transfer coding other than chunked) could carry an echo
 * the scrubber cannot see, so it is refused. Repeated Content-Encoding headers arrive joined, so a stacked
 * coding is seen whole here.
 */
export function decoderFor(contentEncoding: string | undefined, transferEncoding: string | undefined): Transform | Duplex | null {
  if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked') throw new UnreadableResponse(`transfer-encoding ${transferEncoding}`);
  const codings = (contentEncoding ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return null;
  const only = codings.length === 1 ? codings[0] : undefined;
  if (only === 'gzip' || only === 'x-gzip') return createGunzip();
  if (only === 'deflate') return deflateEitherWay();
  if (only === 'br') return createBrotliDecompress();
  throw new UnreadableResponse(`content-encoding ${codings.join(', ')}`);
}

/**
 * `deflate` as browsers read it: RFC 9110 means the zlib format, but servers send raw deflate under that name too,
 * and clients accept both. The first two bytes tell: a zlib header names method 8 and is a multiple of 31. The
 * decompressor behind is paused while the agent's side is full, so a small bomb cannot fill keyswap's memory.
 */
function deflateEitherWay(): Duplex {
  return new DeflateEitherWay();
}

class DeflateEitherWay extends Duplex {
  #inner: Transform | null = null;
  #head = Buffer.alloc(0);

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    let inner = this.#inner;
    if (inner === null) {
      this.#head = Buffer.concat([this.#head, chunk]);
      if (this.#head.length < 2) return done();
      const b0 = this.#head[0] as number;
      const isZlib = (b0 & 0x0f) === 8 && ((b0 << 8) | (this.#head[1] as number)) % 31 === 0;
      inner = this.#inner = isZlib ? createInflate() : createInflateRaw();
      inner.on('data', (d: Buffer) => { if (!this.push(d)) inner?.pause(); });
      inner.once('end', () => this.push(null));
      inner.once('error', (err) => this.destroy(err));
      chunk = this.#head;
    }
    if (inner.write(chunk)) done();
    else inner.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.#inner !== null) {
      this.#inner.end();
      done();
      return;
    }
    // Fewer than two bytes: an empty body is fine, one byte is no deflate stream.
    if (this.#head.length > 0) return done(new UnreadableResponse('deflate body too short'));
    this.push(null);
    done();
  }

  override _read(): void {
    this.#inner?.resume();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.#inner?.destroy();
    done(err);
  }
}
