#!/usr/bin/env node
// Memory churn per request: what each proxy's heap frees per request (read from its own --trace-gc lines), keyswap
// against the bare MITMs, HTTP/1.1 and HTTP/2 at concurrency 32. Scavenges free what dies young; mark-compacts free
// what lived long enough to be promoted first (the costlier kind). Usage: node bench/alloc.mjs [--requests N]
import { mkdtempSync, rmSync } from 'node:fs';
import { h2Load, startProtocolUpstreams } from './lib/protocols.mjs';
import { load } from './lib/load.mjs';
import { startBare, startKeyswap } from './lib/proxies.mjs';
import { benchWorld } from './lib/world.mjs';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--requests') + 1]) || 20_000;
process.env.BENCH_NODE_FLAGS = `${process.env.BENCH_NODE_FLAGS ?? ''} --trace-gc`;
const { env, tls, up, common: world } = await benchWorld('alloc');
const protocols = await startProtocolUpstreams({ ...tls, ...env });
const common = { ...world, extraPorts: [protocols.h2Port] };
const target = `https://localhost:${up.port}`;
// The audit on tmpfs: what is measured is the heap, not the disk.
const auditDir = mkdtempSync('/dev/shm/keyswap-alloc-');

/** Everything a proxy prints from now on (its GC lines), until read. */
function traced(child) {
  let text = '';
  child.stdout.on('data', (c) => { text += c; });
  return { take: () => { const t = text; text = ''; return t; } };
}
/** MB freed by each kind of collection in these --trace-gc lines. */
function freed(text, kind) {
  let mb = 0; let count = 0;
  for (const m of text.matchAll(new RegExp(`${kind} ([\\d.]+) \\([\\d.]+\\) -> ([\\d.]+)`, 'g'))) { mb += Number(m[1]) - Number(m[2]); count++; }
  return { mb, count };
}

const rows = [];
async function measure(label, proxy, run) {
  const gc = traced(proxy.child);
  await run(1_000);
  gc.take();
  const r = await run(N);
  const text = gc.take();
  const young = freed(text, 'Scavenge');
  const old = freed(text, 'Mark-Compact');
  rows.push({ label, requests: r.requests, bad: r.bad, young: (young.mb * 1024) / r.requests, old: (old.mb * 1024) / r.requests, scavenges: young.count, compacts: old.count });
  proxy.child.kill('SIGTERM');
  await new Promise((resolve) => proxy.child.once('exit', resolve));
}

const h1 = (p) => (n) => load(p, env, { total: n, concurrency: 32, timeLimitMs: 120_000 });
const h2 = (p) => (n) => h2Load(p, env, { port: protocols.h2Port, total: n, concurrency: 32, timeLimitMs: 120_000 });
for (const [label, start, run] of [
  ['HTTP/1.1, bare MITM', () => startBare({ ...common, tls }), h1],
  ['HTTP/1.1, keyswap', () => startKeyswap({ ...common, auditDir }), h1],
  ['HTTP/2, bare h2 MITM', () => startBare({ ...common, tls, h2: true }), h2],
  ['HTTP/2, keyswap', () => startKeyswap({ ...common, auditDir }), h2],
]) {
  const proxy = await start();
  await measure(label, proxy, run({ kind: label, url: proxy.url, target, caPem: proxy.caPem, injects: true }));
}
console.log(`Memory churn, ${N} requests each at concurrency 32 after 1,000 to warm up, Node ${process.version}. Command: \`node bench/alloc.mjs\`.\n`);
console.log('| path | KB freed per request, young (scavenges) | KB per request, promoted first (mark-compacts) | scavenges | mark-compacts | bad |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.young.toFixed(1)} | ${r.old.toFixed(1)} | ${r.scavenges} | ${r.compacts} | ${r.bad} |`);
rmSync(auditDir, { recursive: true, force: true });
process.exit(rows.some((r) => r.bad > 0) ? 1 : 0);
