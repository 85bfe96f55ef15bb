#!/usr/bin/env node
// keyswap benchmark: direct vs a plain CONNECT tunnel vs keyswap vs mitmproxy (when available), in one run.
// Every response is verified (the upstream saw the real secret, the agent never did); load is bounded by
// request count and by time. Usage: node bench/run.mjs [--quick] [--no-mitmproxy]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, ProxyAgent, request } from 'undici';
import forge from 'node-forge';

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const WANT_MITM = !args.has('--no-mitmproxy') && !QUICK;
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const KEYSWAP = path.join(REPO, 'dist/cli/main.js');
const PLACEHOLDER = 'sk-PLACEHOLDER-BENCH-0123456789abcdef';
const SECRET = `bench-secret-${randomBytes(8).toString('hex')}`;
const TIME_LIMIT_MS = QUICK ? 20_000 : 60_000; // per scenario and path
const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-bench-'));

// ---- a test CA and an HTTPS upstream that checks what it received -------------------------------------------
function makeCa() {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const ca = forge.pki.createCertificate();
  ca.publicKey = keys.publicKey; ca.serialNumber = '01';
  ca.validity.notBefore = new Date(Date.now() - 3600e3); ca.validity.notAfter = new Date(Date.now() + 86400e3);
  ca.setSubject([{ name: 'commonName', value: 'bench CA' }]); ca.setIssuer([{ name: 'commonName', value: 'bench CA' }]);
  ca.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }]);
  ca.sign(keys.privateKey, forge.md.sha256.create());
  const leafKeys = forge.pki.rsa.generateKeyPair(2048);
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = leafKeys.publicKey; leaf.serialNumber = '02';
  leaf.validity.notBefore = ca.validity.notBefore; leaf.validity.notAfter = ca.validity.notAfter;
  leaf.setSubject([{ name: 'commonName', value: 'localhost' }]); leaf.setIssuer(ca.subject.attributes);
  leaf.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]);
  leaf.sign(keys.privateKey, forge.md.sha256.create());
  return { caPem: forge.pki.certificateToPem(ca), certPem: forge.pki.certificateToPem(leaf), keyPem: forge.pki.privateKeyToPem(leafKeys.privateKey) };
}
const tlsMaterial = makeCa();
const caPath = path.join(dir, 'bench-ca.pem');
writeFileSync(caPath, tlsMaterial.caPem);

let sseDelayMs = 0;
const upstream = https.createServer({ cert: tlsMaterial.certPem, key: tlsMaterial.keyPem }, (req, res) => {
  const auth = req.headers.authorization ?? '';
  const ok = auth === `Bearer ${SECRET}` || auth === `Bearer ${PLACEHOLDER}`;
  if (req.url === '/v1/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let n = 0;
    const tick = () => { res.write(`data: ${Date.now()} ${n}\n\n`); if (++n < 5) setTimeout(tick, sseDelayMs); else res.end(); };
    tick();
    return;
  }
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sawSecret: auth === `Bearer ${SECRET}`, ok }));
  });
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const UP = upstream.address().port;

// ---- keyswap --------------------------------------------------------------------------------------------------
function startKeyswap(extraYaml = '') {
  const cfg = path.join(dir, `keyswap-${randomBytes(3).toString('hex')}.yaml`);
  mkdirSync(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
  writeFileSync(cfg, `version: 1
listen: 127.0.0.1:0
state_dir: ${dir}/state
audit: { path: ${dir}/audit-${path.basename(cfg)}.jsonl }
backend: { type: env }
upstream: { extra_ca_file: ${caPath} }
${extraYaml}
secrets:
  BENCH_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {BENCH_KEY}" }
    bindings: [ { host: localhost, port: ${UP} } ]
`);
  const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : []), KEYSWAP, 'serve', '--config', cfg, '--log-level', 'error'], { env: { PATH: process.env.PATH, KEYSWAP_SECRET_BENCH_KEY: SECRET}, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('keyswap did not start')), 20_000);
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve({ url: m[1], child, caPem: readFileSync(path.join(dir, 'state/ca.pem'), 'utf8') }); }
    });
  });
}

// ---- mitmproxy (Debian's package), with the header-swap addon -----------------------------------------------
async function startMitmproxy() {
  if (!existsSync('/usr/bin/mitmdump')) {
    if (process.getuid?.() === 0) spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'mitmproxy'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (!existsSync('/usr/bin/mitmdump')) return null;
  }
  const confdir = path.join(dir, 'mitm');
  mkdirSync(confdir, { recursive: true });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn('/usr/bin/mitmdump', ['-q', '--listen-host', '127.0.0.1', '--listen-port', String(port), '--set', `confdir=${confdir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${caPath}`, '-s', path.join(REPO, 'bench/peers/header_swap.py')],
  { env: { ...process.env, BENCH_PLACEHOLDER: PLACEHOLDER, BENCH_SECRET: SECRET }, stdio: 'ignore' });
  const caFile = path.join(confdir, 'mitmproxy-ca-cert.pem');
  for (let i = 0; i < 100 && !existsSync(caFile); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500));
  return existsSync(caFile) ? { url: `http://127.0.0.1:${port}`, child, caPem: readFileSync(caFile, 'utf8') } : null;
}

// ---- load -----------------------------------------------------------------------------------------------------
function dispatcherFor(p) {
  if (p.kind === 'direct') return new Agent({ connect: { ca: tlsMaterial.caPem }, connections: 64 });
  return new ProxyAgent({ uri: p.url, requestTls: { ca: p.caPem }, connections: 64 });
}
function targetFor(p) { return p.kind === 'tunnel' ? `https://127.0.0.1:${UP}` : `https://localhost:${UP}`; }

/** Runs `total` requests at `concurrency`, verifying each; returns req/s and latency percentiles. */
async function load(p, { total, concurrency, fresh = false }) {
  let done = 0; let bad = 0; const lat = [];
  const deadline = performance.now() + TIME_LIMIT_MS;
  const shared = fresh ? null : dispatcherFor(p);
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (done < total && performance.now() < deadline) {
      done++;
      const d = shared ?? dispatcherFor(p);
      const t0 = performance.now();
      try {
        const res = await request(`${targetFor(p)}/v1/echo`, { dispatcher: d, method: 'POST', headers: { authorization: `Bearer ${PLACEHOLDER}` }, body: '{}' });
        const body = await res.body.text();
        const j = JSON.parse(body);
        const expectSecret = p.kind === 'keyswap' || p.kind === 'mitmproxy';
        if (res.statusCode !== 200 || j.sawSecret !== expectSecret || body.includes(SECRET)) bad++;
      } catch { bad++; }
      lat.push(performance.now() - t0);
      if (!shared) await d.close();
    }
  }));
  const secs = (performance.now() - start) / 1000;
  if (shared) await shared.close();
  lat.sort((a, b) => a - b);
  const q = (x) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))] ?? NaN;
  return { requests: lat.length, bad, rps: lat.length / secs, p50: q(0.5), p99: q(0.99) };
}

async function sse(p) {
  sseDelayMs = 50;
  const d = dispatcherFor(p);
  const gaps = [];
  for (let i = 0; i < (QUICK ? 3 : 10); i++) {
    const res = await request(`${targetFor(p)}/v1/sse`, { dispatcher: d, headers: { authorization: `Bearer ${PLACEHOLDER}` } });
    for await (const chunk of res.body) {
      const sent = Number(String(chunk).split(' ')[1]);
      gaps.push(Date.now() - sent);
    }
  }
  await d.close();
  gaps.sort((a, b) => a - b);
  return { chunkDelayP50Ms: gaps[Math.floor(gaps.length / 2)], chunkDelayMaxMs: gaps[gaps.length - 1] };
}

function rssMb(pid) {
  try { return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024; } catch { return NaN; }
}

// ---- the run --------------------------------------------------------------------------------------------------
const paths = [{ kind: 'direct' }];
const ks = await startKeyswap();
paths.push({ kind: 'tunnel', url: ks.url, caPem: tlsMaterial.caPem, pid: ks.child.pid });
paths.push({ kind: 'keyswap', url: ks.url, caPem: ks.caPem, pid: ks.child.pid });
const mitm = WANT_MITM ? await startMitmproxy() : null;
if (mitm) paths.push({ kind: 'mitmproxy', url: mitm.url, caPem: mitm.caPem, pid: mitm.child.pid });

const scenarios = [
  ['keep-alive, concurrency 1', { total: QUICK ? 300 : 3000, concurrency: 1 }],
  ['keep-alive, concurrency 32', { total: QUICK ? 2000 : 20000, concurrency: 32 }],
  ['new TLS connection per request, concurrency 4', { total: QUICK ? 100 : 500, concurrency: 4, fresh: true }],
];
const results = { date: new Date().toISOString(), cores: os.cpus().length, node: process.version, quick: QUICK, scenarios: {}, sse: {}, peakRssMb: {} };
for (const p of paths) await load(p, { total: 200, concurrency: 8 }); // warm up every path once
for (const [name, opts] of scenarios) {
  results.scenarios[name] = {};
  for (const p of paths) results.scenarios[name][p.kind] = await load(p, opts);
}
for (const p of paths) results.sse[p.kind] = await sse(p);
for (const p of paths) if (p.pid) results.peakRssMb[p.kind] = rssMb(p.pid);

// ---- report ---------------------------------------------------------------------------------------------------
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
let md = `Run ${results.date} on ${results.cores} cores, Node ${results.node}${QUICK ? ' (quick)' : ''}. Command: \`node bench/run.mjs${QUICK ? ' --quick' : ''}\`.\n\n`;
md += '| scenario | path | req/s | p50 ms | p99 ms | added p50 ms vs direct | req/s vs direct | bad |\n|---|---|---|---|---|---|---|---|\n';
let failures = 0;
for (const [name, byPath] of Object.entries(results.scenarios)) {
  const direct = byPath.direct;
  for (const [kind, r] of Object.entries(byPath)) {
    failures += r.bad;
    md += `| ${name} | ${kind} | ${f(r.rps)} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.p50 - direct.p50, 2)} | ${f((100 * r.rps) / direct.rps)} % | ${r.bad} |\n`;
  }
  if (byPath.mitmproxy) md += `| ${name} | keyswap ÷ mitmproxy | ${f(byPath.keyswap.rps / byPath.mitmproxy.rps, 1)}× | | | | | |\n`;
}
md += '\n| path | SSE chunk delay p50 ms | max ms | peak RSS MB |\n|---|---|---|---|\n';
for (const p of paths) md += `| ${p.kind} | ${f(results.sse[p.kind].chunkDelayP50Ms)} | ${f(results.sse[p.kind].chunkDelayMaxMs)} | ${p.pid ? f(results.peakRssMb[p.kind]) : '–'} |\n`;
console.log(md);
mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
if (!QUICK) writeFileSync(path.join(REPO, `bench/results/${results.date.slice(0, 10)}.json`), `${JSON.stringify(results, null, 2)}\n`);
ks.child.kill('SIGTERM');
mitm?.child.kill('SIGTERM');
upstream.closeAllConnections();
upstream.close();
if (failures > 0) {
  console.error(`${failures} responses failed verification`);
  process.exit(1);
}
process.exit(0);
