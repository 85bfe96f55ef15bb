import { finished, Transform, type TransformCallback } from 'node:stream';

type Piped = NodeJS.ReadableStream & NodeJS.WritableStream;

/**
 * Pipes the first stream through the middle ones into the last and calls `done` once: with null when every
 * stream has finished its part, or with the first error (a reset, a premature close, a scrubber's EchoBlocked)
 * after destroying all of them, so a broken transfer is never mistaken for a clean end.
 *
 * It does what stream.pipeline does, without the AbortController Node 20's pipeline allocates per call and
 * aborts on completion: that builds a DOMException with a stack trace, and with two pipelines per request it was
 * the single largest JavaScript cost in keyswap's CPU profile at concurrency 1 (docs/performance.md).
 */
export function relay(streams: readonly [NodeJS.ReadableStream, ...Piped[], NodeJS.WritableStream], done: (err: Error | null) => void, breakLast?: () => void): void {
  let settled = false;
  let pending = streams.length;
  const settle = (err: Error | null): void => {
    if (settled) return;
    settled = true;
    // `breakLast` ends the destination broken its own way instead of a plain destroy(): an HTTP/2 stream reset
    // with an error code (destroy() would end it NO_ERROR, or drop the queued RST_STREAM with its handle).
    if (err) breakLast?.();
    if (err) for (const s of streams) if (breakLast === undefined || s !== streams[streams.length - 1]) (s as unknown as { destroy(e?: Error): void }).destroy();
    done(err);
  };
  streams.forEach((stream, i) => {
    const last = i === streams.length - 1;
    finished(stream, { readable: !last, writable: i > 0 }, (err) => {
      if (err) settle(err);
      else if (--pending === 0) settle(null);
    });
    const next = streams[i + 1];
    if (next !== undefined) (stream as NodeJS.ReadableStream).pipe(next as NodeJS.WritableStream);
  });
}

/**
 * A pass-through that ends only once `settled` has: the agent's response must not end while its request body is
 * still streaming upstream, or Node's server drops the rest of that body (it dumps an unread request once its
 * response finishes), and the upstream is left holding half a request.
 */
export function endAfter(settled: Promise<void>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) { done(null, chunk); },
    flush(done: TransformCallback) { void settled.then(() => done()); },
  });
}
