// The HTTP/2 ceiling, as bare-mitm.mjs is HTTP/1.1's: one CONNECT listener, TLS terminated with a fixed leaf
// offering h2, each stream forwarded on one shared HTTP/2 session per upstream with the placeholder replaced. No
// policy, no audit, no scrubbing, no checks: never use it for anything but measuring what keyswap's own work costs.
// Usage: node bare-h2-mitm.mjs  (env: BARE_CERT, BARE_KEY, BARE_UPSTREAM_CA files; PLACEHOLDER, SECRET) → prints its URL
import http from 'node:http';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';

const ca = readFileSync(process.env.BARE_UPSTREAM_CA);
const from = `Bearer ${process.env.PLACEHOLDER}`;
const to = `Bearer ${process.env.SECRET}`;
const sessions = new Map();
const upstream = (authority) => {
  let s = sessions.get(authority);
  if (s === undefined || s.closed || s.destroyed) {
    s = http2.connect(`https://${authority}`, { ca });
    s.on('error', () => {});
    sessions.set(authority, s);
  }
  return s;
};
const inner = http2.createSecureServer({ cert: readFileSync(process.env.BARE_CERT), key: readFileSync(process.env.BARE_KEY) });
inner.on('stream', (stream, headers) => {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (k !== ':scheme' && k !== ':authority' && k !== ':method' && k !== ':path') out[k] = v;
  if (out.authorization === from) out.authorization = to;
  const up = upstream(headers[':authority']).request({ ':method': headers[':method'], ':path': headers[':path'], ...out });
  up.on('response', (h) => {
    const back = {};
    for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) back[k] = v;
    stream.respond({ ':status': h[':status'], ...back });
    up.pipe(stream);
  });
  up.on('error', () => stream.destroy());
  stream.on('error', () => up.destroy());
  stream.pipe(up);
});
inner.on('sessionError', () => {});
const outer = http.createServer();
outer.on('connect', (req, socket, head) => {
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  inner.emit('connection', socket);
});
outer.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${outer.address().port}`));
process.on('SIGTERM', () => process.exit(0));
