#!/usr/bin/env node
// keyswap benchmark: direct vs a plain CONNECT tunnel vs a bare Node MITM (the ceiling) vs keyswap vs mitmproxy,
// in one run on one machine. Every response is verified; every load is bounded by a count and a time limit.
// Usage: node bench/run.mjs [--quick] [--no-mitmproxy]    (BENCH_PROF=DIR: CPU profiles of keyswap into DIR)
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { firstRequest, holdIdle, load, sse, transfer } from './lib/load.mjs';
import { startBare, startKeyswap, startMitmproxy } from './lib/proxies.mjs';
import { rssMb, withPeakRss } from './lib/rss.mjs';
import { report } from './lib/report.mjs';
import { benchWorld } from './lib/world.mjs';
import { h2Load, startProtocolUpstreams, wsEcho } from './lib/protocols.mjs';

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const WANT_MITM = !args.has('--no-mitmproxy') && !QUICK;
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const TIME_LIMIT_MS = QUICK ? 20_000 : 60_000; // per scenario and path
const { env, dir, tls, caPath, up } = await benchWorld('bench');
const TMPFS = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/keyswap-bench-') : null;

const bound = `https://localhost:${up.port}`;
const protocols = await startProtocolUpstreams({ ...tls, ...env });
const common = { dir, caPath, ...env, upstreamPort: up.port, extraPorts: [protocols.h2Port, protocols.wsPort] };

// ---- the paths ------------------------------------------------------------------------------------------------
const children = [];
const paths = [{ kind: 'direct', target: bound, caPem: tls.caPem, injects: false }];
const ks = await startKeyswap({ ...common, auditDir: dir });
children.push(ks.child);
paths.push({ kind: 'tunnel', url: ks.url, target: `https://127.0.0.1:${up.port}`, caPem: tls.caPem, injects: false, pid: ks.child.pid });
const bare = await startBare({ ...common, tls });
children.push(bare.child);
paths.push({ kind: 'bare MITM', url: bare.url, target: bound, caPem: bare.caPem, injects: true, pid: bare.child.pid });
paths.push({ kind: 'keyswap', url: ks.url, target: bound, caPem: ks.caPem, injects: true, pid: ks.child.pid });
if (TMPFS) {
  const ksTmp = await startKeyswap({ ...common, auditDir: TMPFS });
  children.push(ksTmp.child);
  paths.push({ kind: 'keyswap, audit on tmpfs', url: ksTmp.url, target: bound, caPem: ksTmp.caPem, injects: true, pid: ksTmp.child.pid, fsyncFree: true });
}
const mitm = WANT_MITM ? await startMitmproxy(common) : null;
if (mitm) {
  children.push(mitm.child);
  paths.push({ kind: 'mitmproxy', url: mitm.url, target: bound, caPem: mitm.caPem, injects: true, pid: mitm.child.pid });
}
const main = paths.filter((p) => !p.fsyncFree);

// ---- the run --------------------------------------------------------------------------------------------------
const results = { date: new Date().toISOString(), cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, quick: QUICK, scenarios: {} };
const note = (s) => process.stderr.write(`bench: ${s}\n`);

results.firstRequest = {};
for (const p of main) results.firstRequest[p.kind] = await firstRequest(p, env);

for (const p of paths) await load(p, env, { total: 200, concurrency: 8, timeLimitMs: TIME_LIMIT_MS }); // warm up every path
const scenarios = [
  ['keep-alive, concurrency 1', { total: QUICK ? 300 : 3000, concurrency: 1 }, paths],
  ['keep-alive, concurrency 32', { total: QUICK ? 2000 : 20000, concurrency: 32 }, paths],
  ['new TLS connection per request, concurrency 4', { total: QUICK ? 100 : 500, concurrency: 4, fresh: true }, main],
];
for (const [name, opts, on] of scenarios) {
  note(name);
  results.scenarios[name] = {};
  for (const p of on) results.scenarios[name][p.kind] = await load(p, env, { ...opts, timeLimitMs: TIME_LIMIT_MS });
}

// HTTP/2 and WebSocket: keyswap against direct only (neither peer MITM speaks them).
const viaProtocols = paths.filter((p) => p.kind === 'direct' || p.kind === 'keyswap');
note('HTTP/2, concurrency 32 over one connection');
results.h2 = {};
for (const p of viaProtocols) await h2Load(p, env, { port: protocols.h2Port, total: 500, concurrency: 32, timeLimitMs: TIME_LIMIT_MS });
for (const p of viaProtocols) results.h2[p.kind] = await h2Load(p, env, { port: protocols.h2Port, total: QUICK ? 2000 : 20000, concurrency: 32, timeLimitMs: TIME_LIMIT_MS });
note('WebSocket echo round trip');
results.ws = {};
for (const p of viaProtocols) results.ws[p.kind] = await wsEcho(p, env, { port: protocols.wsPort, messages: QUICK ? 500 : 3000, timeLimitMs: TIME_LIMIT_MS });

note('server-sent events');
results.sse = {};
for (const p of main) results.sse[p.kind] = await sse(p, env, { streams: QUICK ? 3 : 10, events: 20, gapMs: 50 });

const transferBytes = QUICK ? 64 * 1048576 : 1024 * 1048576;
results.transfer = { bytes: transferBytes, upload: {}, download: {} };
for (const direction of ['upload', 'download']) {
  note(`${transferBytes / 1048576} MiB ${direction}`);
  for (const p of main) results.transfer[direction][p.kind] = await withPeakRss(p.pid, () => transfer(p, env, { bytes: transferBytes, direction, timeLimitMs: TIME_LIMIT_MS * 2 }));
}

const idleCount = QUICK ? 300 : 5000;
note(`${idleCount} idle keep-alive connections`);
results.idle = { count: idleCount };
for (const p of main.filter((x) => x.pid && x.kind !== 'tunnel')) {
  const before = rssMb(p.pid);
  results.idle[p.kind] = await holdIdle(p, env, { count: idleCount, timeLimitMs: TIME_LIMIT_MS * 2 }, async () => {
    await new Promise((r) => setTimeout(r, 500));
    return { rssBeforeMb: before, rssMb: rssMb(p.pid) };
  });
}

// ---- report ---------------------------------------------------------------------------------------------------
const { markdown, failures } = report(results, QUICK);
console.log(markdown);
if (!QUICK) {
  mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(path.join(REPO, `bench/results/${results.date.slice(0, 10)}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(REPO, `bench/results/${results.date.slice(0, 10)}.md`), markdown);
}
for (const c of children) c.kill('SIGTERM');
await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((resolve) => c.once('exit', resolve)))));
up.server.closeAllConnections();
up.server.close();
protocols.close();
// The tmpfs audit is memory: gone with the run (Linux lets keyswap's open descriptor outlive the name).
if (TMPFS) rmSync(TMPFS, { recursive: true, force: true });
if (failures > 0) {
  console.error(`bench: ${failures} responses failed verification`);
  process.exit(1);
}
process.exit(0);
