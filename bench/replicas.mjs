#!/usr/bin/env node
// shared_state measured (issue #29, item 5): one keyswap with its limits in memory, one with them in Redis, and three
// replicas sharing one Redis, under the same load in one run on one machine; then a quota's exactness across the
// three. Every response is verified; every load is bounded by a count and a time limit.
// Usage: node bench/replicas.mjs [--quick]     (needs Debian's redis-server)
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { ProxyAgent, request } from 'undici';
import { load } from './lib/load.mjs';
import { startKeyswap } from './lib/proxies.mjs';
import { benchWorld } from './lib/world.mjs';

const QUICK = process.argv.includes('--quick');
const TIME_LIMIT_MS = QUICK ? 20_000 : 60_000;
const note = (s) => process.stderr.write(`bench: ${s}\n`);
const { env, dir, up, common } = await benchWorld('replicas');

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
const redisPort = await freePort();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
for (let i = 0; i < 200; i++) {
  const up = await new Promise((resolve) => { const s = net.connect(redisPort, '127.0.0.1', () => { s.end(); resolve(true); }); s.on('error', () => resolve(false)); });
  if (up) break;
  await new Promise((r) => setTimeout(r, 25));
}

// Limits that are checked on every request but never reached by the throughput runs.
const LIMITS = { binding: ', rate: "9999999/hour"', usage: 'usage:\n  bench-day: { secrets: [BENCH_KEY], limit: 100000000, period: day }' };
const shared = `shared_state: { redis: { url: "redis://127.0.0.1:${redisPort}" } }`;
const children = [];
const start = async (top, binding = LIMITS.binding) => {
  const k = await startKeyswap({ ...common, auditDir: dir, top, binding });
  children.push(k.child);
  return k;
};
const local = await start(LIMITS.usage);
const one = await start(`${LIMITS.usage}\n${shared}`);
const three = [await start(`${LIMITS.usage}\n${shared}`), await start(`${LIMITS.usage}\n${shared}`), await start(`${LIMITS.usage}\n${shared}`)];
const pathOf = (k, kind) => ({ kind, url: k.url, target: `https://localhost:${up.port}`, caPem: k.caPem, injects: true });

/** The same load split evenly over several proxies at once: their requests per second together. */
async function together(paths, o) {
  const t0 = performance.now();
  const parts = await Promise.all(paths.map((p) => load(p, env, { ...o, total: Math.ceil(o.total / paths.length), concurrency: Math.ceil(o.concurrency / paths.length) })));
  const secs = (performance.now() - t0) / 1000;
  const requests = parts.reduce((n, r) => n + r.requests, 0);
  return { requests, bad: parts.reduce((n, r) => n + r.bad, 0), rps: requests / secs, p50: Math.max(...parts.map((r) => r.p50)), p99: Math.max(...parts.map((r) => r.p99)) };
}

const results = { date: new Date().toISOString(), cores: os.cpus().length, node: process.version, quick: QUICK, scenarios: {} };
const paths = { 'limits in memory': [pathOf(local, 'local')], 'limits in Redis, 1 replica': [pathOf(one, 'shared')], 'limits in Redis, 3 replicas': three.map((k, i) => pathOf(k, `replica ${i}`)) };
for (const ps of Object.values(paths)) await together(ps, { total: 300, concurrency: 6, timeLimitMs: TIME_LIMIT_MS }); // warm up
for (const [name, o] of [['concurrency 1', { total: QUICK ? 300 : 2000, concurrency: 1 }], ['concurrency 32', { total: QUICK ? 1500 : 12000, concurrency: 32 }]]) {
  results.scenarios[name] = {};
  // Interleaved rounds, so drift on a shared machine lands on every path alike.
  const rounds = QUICK ? 1 : 3;
  for (let round = 0; round < rounds; round++) {
    for (const [pname, ps] of Object.entries(paths)) {
      const r = name === 'concurrency 1' && ps.length > 1 ? await load(ps[0], env, { ...o, timeLimitMs: TIME_LIMIT_MS }) : await together(ps, { ...o, timeLimitMs: TIME_LIMIT_MS });
      const best = results.scenarios[name][pname];
      if (r.bad > 0) throw new Error(`${pname}: ${r.bad} unverified responses`);
      if (best === undefined || r.rps > best.rps) results.scenarios[name][pname] = r;
    }
  }
  note(`${name}: ${Object.entries(results.scenarios[name]).map(([k, v]) => `${k} ${v.rps.toFixed(0)} req/s p50 ${v.p50.toFixed(2)} ms`).join('; ')}`);
}

// Exactness: a quota of LIMIT across three fresh replicas, 3×LIMIT requests at once; exactly LIMIT may go out.
const LIMIT = QUICK ? 200 : 1000;
const quota = `usage:\n  exact: { secrets: [BENCH_KEY], limit: ${LIMIT}, period: day }\nshared_state: { redis: { url: "redis://127.0.0.1:${redisPort}", prefix: "exact-${Date.now()}:" } }`;
const exact = [await start(quota, ''), await start(quota, ''), await start(quota, '')];
const before = up.count?.() ?? null;
const agents = exact.map((k) => new ProxyAgent({ uri: k.url, requestTls: { ca: k.caPem }, connections: 16 }));
const statuses = await Promise.all(Array.from({ length: 3 * LIMIT }, async (_, i) => {
  const res = await request(`https://localhost:${up.port}/v1/echo`, { dispatcher: agents[i % 3], method: 'POST', headers: { authorization: `Bearer ${env.placeholder}` }, body: '{}' });
  await res.body.text();
  return res.statusCode;
}));
await Promise.all(agents.map((a) => a.close()));
results.exactness = { limit: LIMIT, sent: 3 * LIMIT, allowed: statuses.filter((s) => s === 200).length, refused429: statuses.filter((s) => s === 429).length, other: statuses.filter((s) => s !== 200 && s !== 429).length, upstreamSaw: before === null ? null : (up.count() - before) };
note(`exactness: ${JSON.stringify(results.exactness)}`);

const base = results.scenarios['concurrency 32']['limits in memory'].rps;
const c1 = results.scenarios['concurrency 1'];
results.summary = {
  'Redis, 1 replica ÷ memory (c=32)': +(results.scenarios['concurrency 32']['limits in Redis, 1 replica'].rps / base).toFixed(2),
  '3 replicas ÷ 1 replica in memory (c=32)': +(results.scenarios['concurrency 32']['limits in Redis, 3 replicas'].rps / base).toFixed(2),
  'added p50 of the Redis round trips (c=1, ms)': +(c1['limits in Redis, 1 replica'].p50 - c1['limits in memory'].p50).toFixed(2),
};
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
for (const c of children) c.kill('SIGTERM');
redis.kill('SIGTERM');
await up.close?.();
if (results.exactness.allowed !== LIMIT || results.exactness.other !== 0) { note('quota not exact'); process.exit(1); }
process.exit(0);
