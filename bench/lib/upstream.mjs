// The loopback HTTPS upstream every path talks to. It reports what it received, so the load generator can verify
// each response: did the real secret arrive (through an injecting proxy) or the placeholder (direct, tunnel)?
import https from 'node:https';
import { performance } from 'node:perf_hooks';

export const CHUNK = Buffer.alloc(64 * 1024, 'keyswap bench payload ');

export async function startUpstream({ certPem, keyPem, secret, placeholder }) {
  let withSecret = 0; // requests that arrived carrying the real secret (a quota's exactness is counted here)
  const server = https.createServer({ cert: certPem, key: keyPem }, (req, res) => {
    const auth = req.headers.authorization ?? '';
    const sawSecret = auth === `Bearer ${secret}`;
    if (sawSecret) withSecret++;
    const ok = sawSecret || auth === `Bearer ${placeholder}`;
    const url = new URL(req.url, 'https://x');
    if (url.pathname === '/v1/sse') return sse(res, Number(url.searchParams.get('gap') ?? 50), Number(url.searchParams.get('n') ?? 5));
    if (url.pathname === '/v1/download') return download(res, Number(url.searchParams.get('bytes')), sawSecret);
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => {
      const body = JSON.stringify({ sawSecret, ok, bytes });
      // Chunked (writeHead before end sets no length), as every run before had it; ?fixed adds a content-length.
      res.writeHead(200, url.searchParams.has('fixed') ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  // Explicit, and longer than a run: Node's 5 s default closed pooled sockets between scenarios, so a run paid
  // handshakes that belong to no scenario.
  server.keepAliveTimeout = 600_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: server.address().port, count: () => withSecret };
}

/** Events stamped with the upstream's clock (the bench process's own: one clock for sender and receiver). */
function sse(res, gapMs, n) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  const tick = () => {
    res.write(`data: ${performance.now()} ${i}\n\n`);
    if (++i < n) setTimeout(tick, gapMs); else res.end();
  };
  tick();
}

function download(res, total, sawSecret) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total, 'x-saw-secret': String(sawSecret) });
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const n = Math.min(CHUNK.length, total - sent);
      sent += n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}
