// The ceiling: the least a Node MITM can do for the same header swap. One CONNECT listener, TLS terminated
// with a fixed leaf, requests parsed by one inner http.Server, forwarded over a keep-alive https.Agent with
// the placeholder replaced. No policy, no audit, no scrubbing, no checks: never use it for anything but
// measuring what keyswap's own work costs on top of Node's HTTP and TLS.
// Usage: node bare-mitm.mjs  (env: BARE_CERT, BARE_KEY, BARE_UPSTREAM_CA files; PLACEHOLDER, SECRET) → prints its URL
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

const context = tls.createSecureContext({ cert: readFileSync(process.env.BARE_CERT), key: readFileSync(process.env.BARE_KEY) });
const agent = new https.Agent({ keepAlive: true, maxFreeSockets: 64, ca: readFileSync(process.env.BARE_UPSTREAM_CA) });
const from = `Bearer ${process.env.PLACEHOLDER}`;
const to = `Bearer ${process.env.SECRET}`;
const targets = new WeakMap();

const inner = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const target = targets.get(req.socket);
  const headers = { ...req.headers };
  if (headers.authorization === from) headers.authorization = to;
  const up = https.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers, agent, servername: target.host }, (upRes) => {
    res.writeHead(upRes.statusCode, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
const outer = http.createServer();
outer.on('connect', (req, socket, head) => {
  const [host, port] = req.url.split(':');
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
  targets.set(tlsSocket, { host, port: Number(port) });
  tlsSocket.on('error', () => tlsSocket.destroy());
  inner.emit('connection', tlsSocket);
});
outer.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${outer.address().port}`));
process.on('SIGTERM', () => process.exit(0));
