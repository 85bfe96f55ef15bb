// The load generator (undici 7): every run is bounded by a request count and a time limit, and every response
// is verified: through an injecting proxy the upstream saw the real secret, otherwise the placeholder, and the
// agent never saw the secret.
import net from 'node:net';
import { once } from 'node:events';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Agent, ProxyAgent, request } from 'undici';
import { CHUNK } from './upstream.mjs';

export function dispatcherFor(p, connections = 64) {
  if (p.kind === 'direct') return new Agent({ connect: { ca: p.caPem }, connections });
  return new ProxyAgent({ uri: p.url, requestTls: { ca: p.caPem }, connections });
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Runs up to `total` requests at `concurrency` within `timeLimitMs`; returns req/s and latency percentiles. */
export async function load(p, env, { total, concurrency, fresh = false, timeLimitMs, query = '' }) {
  let started = 0; let bad = 0; const lat = [];
  const deadline = performance.now() + timeLimitMs;
  const shared = fresh ? null : dispatcherFor(p);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < total && performance.now() < deadline) {
      started++;
      const d = shared ?? dispatcherFor(p);
      const t = performance.now();
      if (!(await verifiedEcho(p, env, d, query))) bad++;
      lat.push(performance.now() - t);
      if (!shared) await d.close();
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  if (shared) await shared.close();
  lat.sort((a, b) => a - b);
  return { requests: lat.length, bad, rps: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

async function verifiedEcho(p, env, dispatcher, query = '') {
  try {
    const res = await request(`${p.target}/v1/echo${query}`, { dispatcher, method: 'POST', headers: { authorization: `Bearer ${env.placeholder}` }, body: '{}' });
    const body = await res.body.text();
    const j = JSON.parse(body);
    return res.statusCode === 200 && j.sawSecret === p.injects && !body.includes(env.secret);
  } catch {
    return false;
  }
}

/** The first request a freshly started proxy serves: CONNECT, both handshakes, the upstream dial. */
export async function firstRequest(p, env) {
  const d = dispatcherFor(p);
  const t = performance.now();
  const ok = await verifiedEcho(p, env, d);
  const ms = performance.now() - t;
  await d.close();
  return { ms, bad: ok ? 0 : 1 };
}

/**
 * A slow event stream (an LLM's tokens): first-event latency, and each event's delay from the moment the
 * upstream wrote it to the moment the agent read it (one process, one clock).
 */
export async function sse(p, env, { streams, events, gapMs }) {
  const d = dispatcherFor(p);
  const delays = []; const firsts = []; let bad = 0;
  for (let i = 0; i < streams; i++) {
    const t = performance.now();
    const res = await request(`${p.target}/v1/sse?gap=${gapMs}&n=${events}`, { dispatcher: d, headers: { authorization: `Bearer ${env.placeholder}` } });
    let seen = 0; let buffered = '';
    for await (const chunk of res.body) {
      const now = performance.now();
      buffered += chunk;
      for (let at = buffered.indexOf('\n\n'); at >= 0; at = buffered.indexOf('\n\n')) {
        const stamp = Number(buffered.slice(0, at).split(' ')[1]);
        buffered = buffered.slice(at + 2);
        if (seen++ === 0) firsts.push(now - t);
        delays.push(now - stamp);
      }
    }
    if (res.statusCode !== 200 || seen !== events) bad++;
  }
  await d.close();
  delays.sort((a, b) => a - b); firsts.sort((a, b) => a - b);
  return { firstEventP50Ms: percentile(firsts, 0.5), chunkDelayP50Ms: percentile(delays, 0.5), chunkDelayP99Ms: percentile(delays, 0.99), chunkDelayMaxMs: delays.at(-1), bad };
}

/** One large body each way through the path; verified by byte count on the far side. */
export async function transfer(p, env, { bytes, direction, timeLimitMs }) {
  const d = dispatcherFor(p, 1);
  const signal = AbortSignal.timeout(timeLimitMs);
  const t = performance.now();
  let ok = false;
  try {
    if (direction === 'upload') {
      const body = (async function* () {
        for (let sent = 0; sent < bytes; sent += CHUNK.length) yield sent + CHUNK.length <= bytes ? CHUNK : CHUNK.subarray(0, bytes - sent);
      })();
      const res = await request(`${p.target}/v1/upload`, { dispatcher: d, method: 'POST', signal, headers: { authorization: `Bearer ${env.placeholder}`, 'content-length': String(bytes) }, body });
      const j = await res.body.json();
      ok = res.statusCode === 200 && j.bytes === bytes && j.sawSecret === p.injects;
    } else {
      const res = await request(`${p.target}/v1/download?bytes=${bytes}`, { dispatcher: d, signal, headers: { authorization: `Bearer ${env.placeholder}` } });
      let got = 0;
      for await (const chunk of res.body) got += chunk.length;
      ok = res.statusCode === 200 && got === bytes && res.headers['x-saw-secret'] === String(p.injects);
    }
  } catch { ok = false; }
  const secs = (performance.now() - t) / 1000;
  await d.destroy();
  return { seconds: secs, mbPerSec: bytes / 1048576 / secs, bad: ok ? 0 : 1 };
}

/**
 * Opens `count` agent connections through the proxy (CONNECT, TLS, one request each) and leaves them idle, the
 * way keep-alive clients do; `measure` runs while all are open. Returns how many opened and verified.
 */
export async function holdIdle(p, env, { count, batch = 100, timeLimitMs }, measure) {
  const proxy = new URL(p.url);
  const [host, port] = p.target.replace('https://', '').split(':');
  const sockets = []; let bad = 0;
  const deadline = performance.now() + timeLimitMs;
  const openOne = async () => {
    const raw = net.connect(Number(proxy.port), proxy.hostname);
    sockets.push(raw);
    raw.on('error', () => {});
    await once(raw, 'connect');
    raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    await readUntil(raw, (s) => s.includes('\r\n\r\n'));
    const t = tls.connect({ socket: raw, servername: host, ca: p.caPem });
    t.on('error', () => {});
    sockets.push(t);
    await once(t, 'secureConnect');
    t.write(`POST /v1/echo HTTP/1.1\r\nHost: ${host}:${port}\r\nAuthorization: Bearer ${env.placeholder}\r\nContent-Length: 0\r\n\r\n`);
    const text = await readUntil(t, (s) => s.includes('"bytes":0}') && (!/transfer-encoding: chunked/i.test(s) || s.endsWith('0\r\n\r\n')));
    if (!text.startsWith('HTTP/1.1 200') || text.includes(env.secret) || !text.includes(`"sawSecret":${p.injects}`)) bad++;
  };
  for (let opened = 0; opened < count && performance.now() < deadline; opened += batch) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(batch, count - opened) }, openOne));
    bad += results.filter((r) => r.status === 'rejected').length;
  }
  const open = sockets.filter((s) => s instanceof tls.TLSSocket && !s.destroyed).length;
  const measured = await measure();
  for (const s of sockets) s.destroy();
  return { open, bad, ...measured };
}

function readUntil(socket, done) {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c) => {
      text += c.toString('latin1');
      if (done(text)) { socket.off('data', onData); socket.off('close', onClose); resolve(text); }
    };
    const onClose = () => reject(new Error('closed'));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
