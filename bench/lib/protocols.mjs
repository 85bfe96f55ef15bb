// HTTP/2 and WebSocket paths: direct vs through keyswap, verified like the HTTP/1.1 load (the upstream says
// whether it saw the real secret; the client never sees it). Bounded by a count and a time limit.
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { Agent, ProxyAgent, WebSocket } from 'undici';
import { WebSocketServer } from 'ws';

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** An h2-only upstream answering /v1/echo with {sawSecret}, and a WebSocket echo server on its own port. */
export async function startProtocolUpstreams({ certPem, keyPem, secret, placeholder }) {
  const h2 = http2.createSecureServer({ cert: certPem, key: keyPem });
  h2.on('stream', (stream, headers) => {
    const auth = headers.authorization ?? '';
    const sawSecret = auth === `Bearer ${secret}`;
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ sawSecret, ok: sawSecret || auth === `Bearer ${placeholder}` }));
    });
  });
  await new Promise((r) => h2.listen(0, '127.0.0.1', r));
  const wsServer = https.createServer({ cert: certPem, key: keyPem });
  const wss = new WebSocketServer({ server: wsServer, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const sawSecret = req.headers.authorization === `Bearer ${secret}`;
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${sawSecret ? 'secret' : 'placeholder'}:${data}`));
  });
  await new Promise((r) => wsServer.listen(0, '127.0.0.1', r));
  return {
    h2Port: h2.address().port,
    wsPort: wsServer.address().port,
    close() { h2.close(); wss.close(); wsServer.closeAllConnections(); wsServer.close(); },
  };
}

/** One TLS connection offering h2: straight to the upstream, or through the proxy's CONNECT. */
export async function h2Session(p, port) {
  const target = `localhost:${port}`;
  if (p.kind === 'direct') return http2.connect(`https://${target}`, { ca: p.caPem });
  const proxy = new URL(p.url);
  const raw = net.connect(Number(proxy.port), proxy.hostname);
  await new Promise((resolve, reject) => { raw.once('connect', resolve); raw.once('error', reject); });
  raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await new Promise((resolve, reject) => {
    let head = '';
    const onData = (c) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      if (head.startsWith('HTTP/1.1 200')) resolve(); else reject(new Error(head.split('\r\n')[0]));
    };
    raw.on('data', onData);
  });
  const socket = tls.connect({ socket: raw, servername: 'localhost', ca: p.caPem, ALPNProtocols: ['h2'] });
  await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
  return http2.connect(`https://${target}`, { createConnection: () => socket });
}

/** `concurrency` streams at a time over `connections` HTTP/2 connections (one by default), up to `total` requests. */
export async function h2Load(p, env, { port, total, concurrency, timeLimitMs, connections = 1 }) {
  const sessions = await Promise.all(Array.from({ length: connections }, () => h2Session(p, port)));
  for (const s of sessions) s.on('error', () => {});
  let started = 0; let bad = 0; const lat = [];
  const deadline = performance.now() + timeLimitMs;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    const session = sessions[worker % sessions.length];
    while (started < total && performance.now() < deadline) {
      started++;
      const t = performance.now();
      const body = await new Promise((resolve) => {
        const s = session.request({ ':method': 'POST', ':path': '/v1/echo', authorization: `Bearer ${env.placeholder}` });
        let text = '';
        s.on('data', (c) => { text += c; });
        s.on('error', () => resolve(null));
        s.on('end', () => resolve(text));
        s.end('{}');
      });
      lat.push(performance.now() - t);
      try {
        const j = JSON.parse(body);
        if (j.sawSecret !== p.injects || body.includes(env.secret)) bad++;
      } catch { bad++; }
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  for (const s of sessions) s.close();
  lat.sort((a, b) => a - b);
  return { requests: lat.length, bad, rps: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

/** Sequential WebSocket echoes on one connection: the round-trip of a message, as an agent's realtime session sees it. */
export async function wsEcho(p, env, { port, messages, timeLimitMs }) {
  const dispatcher = p.kind === 'direct' ? new Agent({ connect: { ca: p.caPem } }) : new ProxyAgent({ uri: p.url, requestTls: { ca: p.caPem } });
  const ws = new WebSocket(`wss://localhost:${port}/`, { dispatcher, headers: { authorization: `Bearer ${env.placeholder}` } });
  await new Promise((resolve, reject) => { ws.addEventListener('open', resolve); ws.addEventListener('error', reject); });
  const expected = p.injects ? 'secret' : 'placeholder';
  let bad = 0; const lat = [];
  const deadline = performance.now() + timeLimitMs;
  for (let i = 0; i < messages && performance.now() < deadline; i++) {
    const t = performance.now();
    const reply = await new Promise((resolve) => {
      ws.addEventListener('message', (e) => resolve(String(e.data)), { once: true });
      ws.send(`m${i}`);
    });
    lat.push(performance.now() - t);
    if (reply !== `${expected}:m${i}`) bad++;
  }
  ws.close();
  await dispatcher.close();
  lat.sort((a, b) => a - b);
  return { messages: lat.length, bad, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}
