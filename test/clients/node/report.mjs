// The one line every Node client prints: what it got, for the matrix to judge (same fields in every language).
export function report(fields) {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

/** The key text the stand-in echoed back (after keyswap's scrubbing): a completion's `key=…` or `received_key`. */
export function echoOf(text) {
  return /key=([^\s"]*)/.exec(text)?.[1] ?? /"received_key":"([^"]*)"/.exec(text)?.[1] ?? null;
}

/** Counts streamed pieces and notes when the first arrived (epoch ms, compared with when the server wrote the last). */
export function streamClock() {
  const started = Date.now();
  let chunks = 0;
  let firstAt = null;
  return {
    chunk() {
      chunks++;
      firstAt ??= Date.now();
    },
    fields() {
      return { chunks, first_chunk_at: firstAt, ttfc_ms: firstAt === null ? null : firstAt - started, end_at: Date.now() };
    },
  };
}
