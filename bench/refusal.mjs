#!/usr/bin/env node
// What a refusal costs the agent: a plain request to a host no binding names, under `unmatched_destination_policy:
// deny`, each on a new connection, sequential. A refusal is answered after its record is written, so this is about
// one durable audit write over the refusal itself. --baseline adds another built checkout to the same alternation.
// Usage: node bench/refusal.mjs [--requests N] [--baseline CHECKOUT]
import net from 'node:net';
import path from 'node:path';
import { startKeyswap } from './lib/proxies.mjs';
import { benchWorld } from './lib/world.mjs';

const argv = process.argv.slice(2);
const BASELINE = argv.includes('--baseline') ? path.resolve(argv[argv.indexOf('--baseline') + 1]) : null;
const N = Number(argv[argv.indexOf('--requests') + 1]) || 600;
const { common: world, dir } = await benchWorld('refusal');
const proxies = { keyswap: await startKeyswap({ ...world, auditDir: dir, top: 'unmatched_destination_policy: deny' }) };
if (BASELINE !== null) proxies.baseline = await startKeyswap({ ...world, auditDir: dir, repo: BASELINE, top: 'unmatched_destination_policy: deny' });

const refusal = (url) => new Promise((resolve) => {
  const t = performance.now();
  const s = net.connect(Number(new URL(url).port), '127.0.0.1', () => s.write('GET http://unbound.bench.invalid/ HTTP/1.1\r\nHost: unbound.bench.invalid\r\nConnection: close\r\n\r\n'));
  let got = '';
  s.on('data', (c) => { got += c; });
  s.on('error', () => {});
  s.on('close', () => resolve({ ms: performance.now() - t, ok: got.startsWith('HTTP/1.1 403') }));
});
const kinds = Object.keys(proxies);
const lat = Object.fromEntries(kinds.map((k) => [k, []]));
let bad = 0;
const rounds = 6;
for (let round = 0; round < rounds; round++) {
  for (const k of round % 2 === 0 ? kinds : [...kinds].reverse()) {
    for (let i = 0; i < Math.ceil(N / rounds); i++) {
      const r = await refusal(proxies[k].url);
      lat[k].push(r.ms);
      if (!r.ok) bad++;
    }
  }
}
const at = (xs, q) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)];
console.log('| proxy | refusals | p50 ms | p99 ms |\n|---|---|---|---|');
for (const k of kinds) console.log(`| ${k} | ${lat[k].length} | ${at(lat[k], 0.5).toFixed(2)} | ${at(lat[k], 0.99).toFixed(2)} |`);
if (bad > 0) console.log(`${bad} answers were not the 403 refusal`);
for (const p of Object.values(proxies)) p.child.kill('SIGTERM');
process.exit(bad > 0 ? 1 : 0);
