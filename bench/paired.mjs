#!/usr/bin/env node
// keyswap against the bare Node MITM, in alternating repetitions (median of each), with the CPU each proxy
// process used per request read from its own scheduler statistics: steadier than req/s on a shared machine.
// Usage: node bench/paired.mjs [--reps N] [--quick] [--baseline CHECKOUT]   (npm run bench:paired)
// --baseline adds another built checkout of keyswap (audit on disk) to the same run: how a change is judged.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { load } from './lib/load.mjs';
import { h2Load, startProtocolUpstreams } from './lib/protocols.mjs';
import { startBare, startKeyswap } from './lib/proxies.mjs';
import { benchWorld } from './lib/world.mjs';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const BASELINE = argv.includes('--baseline') ? path.resolve(argv[argv.indexOf('--baseline') + 1]) : null;
const REPS = Number(argv[argv.indexOf('--reps') + 1]) || (QUICK ? 3 : 5);
const { env, dir, tls, up, common: world } = await benchWorld('paired');
const bound = `https://localhost:${up.port}`;
const protocols = await startProtocolUpstreams({ ...tls, ...env });
const common = { ...world, extraPorts: [protocols.h2Port] };

const ks = await startKeyswap({ ...common, auditDir: dir });
const bare = await startBare({ ...common, tls });
const bareH2 = await startBare({ ...common, tls, h2: true });
const tmpfsDir = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/keyswap-paired-') : null;
const tmpfs = tmpfsDir === null ? null : await startKeyswap({ ...common, auditDir: tmpfsDir });
const base = BASELINE === null ? null : await startKeyswap({ ...common, auditDir: dir, repo: BASELINE });
// This round's features configured where the request goes, none triggered: a quota it counts under (never reached),
// a binding on the same host holding other paths for approval, and an MCP tool policy on another host.
const featured = await startKeyswap({
  ...common, auditDir: dir,
  top: 'usage:\n  monthly: { secrets: [BENCH_KEY], limit: 1000000000, period: month }',
  secrets: `  HELD_KEY:\n    placeholder: "held-PLACEHOLDER-0123456789abcdef"\n    inject: { header: X-Held, format: "{HELD_KEY}" }\n    bindings: [ { host: localhost, port: ${up.port}, paths: ["/v1/admin/**"], approve: true } ]\n`
    + '  MCP_KEY:\n    placeholder: "mcp-PLACEHOLDER-0123456789abcdef"\n    inject: { header: Authorization, format: "Bearer {MCP_KEY}" }\n    bindings: [ { host: mcp.bench.invalid, mcp: { tools: [search] } } ]\n',
  env: { KEYSWAP_SECRET_HELD_KEY: 'held-secret-0123456789', KEYSWAP_SECRET_MCP_KEY: 'mcp-secret-0123456789' },
});
const paths = [
  { kind: 'bare MITM', url: bare.url, target: bound, caPem: bare.caPem, injects: true, pid: bare.child.pid },
  { kind: 'keyswap', url: ks.url, target: bound, caPem: ks.caPem, injects: true, pid: ks.child.pid },
  ...(base ? [{ kind: 'keyswap, baseline', url: base.url, target: bound, caPem: base.caPem, injects: true, pid: base.child.pid }] : []),
  ...(tmpfs ? [{ kind: 'keyswap, audit on tmpfs', url: tmpfs.url, target: bound, caPem: tmpfs.caPem, injects: true, pid: tmpfs.child.pid }] : []),
  { kind: 'keyswap, features configured', url: featured.url, target: bound, caPem: featured.caPem, injects: true, pid: featured.child.pid },
];
// HTTP/2 agents: the same CONNECT and TLS, h2 inside, to an h2 upstream (keyswap forwards over h2 to it).
const h2Paths = [
  { kind: 'direct', caPem: tls.caPem, injects: false, pid: null },
  { kind: 'bare h2 MITM', url: bareH2.url, caPem: bareH2.caPem, injects: true, pid: bareH2.child.pid },
  { kind: 'keyswap', url: ks.url, caPem: ks.caPem, injects: true, pid: ks.child.pid },
  ...(base ? [{ kind: 'keyswap, baseline', url: base.url, caPem: base.caPem, injects: true, pid: base.child.pid }] : []),
];

/** utime + stime in clock ticks (100 Hz), and context switches, of one process. */
function sched(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const n = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { ticks: Number(stat[11]) + Number(stat[12]), switches: n('voluntary_ctxt_switches') + n('nonvoluntary_ctxt_switches') };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const NO_SCHED = { ticks: 0, switches: 0 };
const scenarios = [['keep-alive, concurrency 32', { total: QUICK ? 3000 : 12000, concurrency: 32 }], ['keep-alive, concurrency 1', { total: QUICK ? 500 : 2000, concurrency: 1 }]];
for (const p of paths) await load(p, env, { total: 500, concurrency: 8, timeLimitMs: 30_000 });
const results = {};
for (const [name, opts] of scenarios) {
  results[name] = Object.fromEntries(paths.map((p) => [p.kind, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const p of rep % 2 === 0 ? paths : [...paths].reverse()) {
      const before = sched(p.pid);
      const r = await load(p, env, { ...opts, timeLimitMs: 60_000 });
      const after = sched(p.pid);
      results[name][p.kind].push({ ...r, cpuUsPerReq: ((after.ticks - before.ticks) * 10_000) / r.requests, switchesPerReq: (after.switches - before.switches) / r.requests });
    }
  }
}

const h2Scenarios = [
  ['HTTP/2, one connection, concurrency 32', { total: QUICK ? 2000 : 10000, concurrency: 32, connections: 1 }],
  ['HTTP/2, one connection, concurrency 1', { total: QUICK ? 300 : 1500, concurrency: 1, connections: 1 }],
  ['HTTP/2, 4 connections, concurrency 32', { total: QUICK ? 2000 : 10000, concurrency: 32, connections: 4 }],
];
for (const p of h2Paths) await h2Load(p, env, { port: protocols.h2Port, total: 300, concurrency: 8, timeLimitMs: 30_000 });
for (const [name, opts] of h2Scenarios) {
  results[name] = Object.fromEntries(h2Paths.map((p) => [p.kind, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const p of rep % 2 === 0 ? h2Paths : [...h2Paths].reverse()) {
      const before = p.pid === null ? NO_SCHED : sched(p.pid);
      const r = await h2Load(p, env, { port: protocols.h2Port, ...opts, timeLimitMs: 60_000 });
      const after = p.pid === null ? NO_SCHED : sched(p.pid);
      results[name][p.kind].push({ ...r, cpuUsPerReq: ((after.ticks - before.ticks) * 10_000) / r.requests, switchesPerReq: (after.switches - before.switches) / r.requests });
    }
  }
}

let md = `Paired run ${new Date().toISOString()} on ${os.cpus().length} cores, Node ${process.version}: ${REPS} alternating repetitions, medians. Command: \`node bench/paired.mjs${QUICK ? ' --quick' : ''}${BASELINE ? ' --baseline <checkout>' : ''}\`.\n\n`;
md += '| scenario | path | req/s | p50 ms | p99 ms | proxy CPU µs/request | context switches/request | bad |\n|---|---|---|---|---|---|---|---|\n';
for (const [name, byPath] of Object.entries(results)) {
  const m = {};
  for (const [kind, runs] of Object.entries(byPath)) {
    m[kind] = { rps: median(runs.map((x) => x.rps)), p50: median(runs.map((x) => x.p50)), p99: median(runs.map((x) => x.p99)), cpu: median(runs.map((x) => x.cpuUsPerReq)), sw: median(runs.map((x) => x.switchesPerReq)), bad: runs.reduce((a, x) => a + x.bad, 0) };
    md += `| ${name} | ${kind} | ${m[kind].rps.toFixed(0)} | ${m[kind].p50.toFixed(2)} | ${m[kind].p99.toFixed(2)} | ${m[kind].cpu.toFixed(0)} | ${m[kind].sw.toFixed(2)} | ${m[kind].bad} |\n`;
  }
  const k = m.keyswap; const b = m['bare MITM'] ?? m['bare h2 MITM'];
  md += `| ${name} | keyswap ÷ ${m['bare MITM'] ? 'bare MITM' : 'bare h2 MITM'} | ${(k.rps / b.rps).toFixed(2)}× | +${(k.p50 - b.p50).toFixed(2)} ms | | +${(k.cpu - b.cpu).toFixed(0)} µs | ${(k.sw / b.sw).toFixed(1)}× | |\n`;
  const f = m['keyswap, features configured'];
  if (f) md += `| ${name} | features configured ÷ keyswap | ${(f.rps / k.rps).toFixed(2)}× | ${(f.p50 - k.p50 >= 0 ? '+' : '')}${(f.p50 - k.p50).toFixed(2)} ms | | ${(f.cpu - k.cpu >= 0 ? '+' : '')}${(f.cpu - k.cpu).toFixed(0)} µs | | |\n`;
  if (m['keyswap, baseline']) md += `| ${name} | keyswap ÷ keyswap, baseline | ${(k.rps / m['keyswap, baseline'].rps).toFixed(2)}× | ${(k.p50 - m['keyswap, baseline'].p50).toFixed(2)} ms | | ${(k.cpu - m['keyswap, baseline'].cpu).toFixed(0)} µs | ${(k.sw / m['keyswap, baseline'].sw).toFixed(2)}× | |\n`;
  if (m['keyswap, audit on tmpfs']) md += `| ${name} | keyswap, audit on tmpfs ÷ bare MITM | ${(m['keyswap, audit on tmpfs'].rps / b.rps).toFixed(2)}× | | | +${(m['keyswap, audit on tmpfs'].cpu - b.cpu).toFixed(0)} µs | | |\n`;
}
console.log(md);
const children = [ks.child, bare.child, bareH2.child, featured.child, tmpfs?.child, base?.child].filter((c) => c !== undefined);
for (const c of children) c.kill('SIGTERM');
await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((resolve) => c.once('exit', resolve)))));
protocols.close();
up.server.closeAllConnections();
up.server.close();
// The tmpfs audit is memory: gone with the run.
if (tmpfsDir !== null) rmSync(tmpfsDir, { recursive: true, force: true });
const bad = Object.values(results).flatMap((x) => Object.values(x).flat()).reduce((a, x) => a + x.bad, 0);
process.exit(bad > 0 ? 1 : 0);
