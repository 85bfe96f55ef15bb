// Runs inside a fresh network namespace (client-matrix.test.ts starts it under `unshare -n`): only loopback
// exists, so a client that bypasses keyswap fails its name lookup at once and nothing can leave the machine.
// Starts the stand-ins and one keyswap, runs every client under `keyswap run` one after another (so each
// stand-in request belongs to exactly one client), and writes what happened to a results file for the test to
// judge. Usage: node run-matrix.mjs INPUT.json RESULTS.json
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLIENTS } from './client-catalog.mjs';
import { startGitStandIn } from './git-stand-in.mjs';
import { buildGoClient } from './go-build.mjs';
import { matrixConfig } from './keyswap-config.mjs';
import { skipReason } from './needs.mjs';
import { startApiStandIns } from './stand-ins.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const KEYSWAP = path.resolve(HERE, '../../dist/cli/main.js');
const CLIENT_TIMEOUT_MS = 60_000;

const [inputPath, resultsPath] = process.argv.slice(2);
// Where the run's time goes, for the summary: seconds since the runner started, at the end of each phase.
const t0 = Date.now();
const phases = {};
const phase = (name) => { phases[name] = (Date.now() - t0) / 1000; };
/** @type {{ dir: string, tls: Record<'openai'|'anthropic'|'github', { certPem: string, keyPem: string }>, testCaPem: string, keys: Record<'OPENAI_API_KEY'|'ANTHROPIC_API_KEY'|'GITHUB_TOKEN', { real: string, placeholder: string }>, readme: string }} */
const input = JSON.parse(readFileSync(inputPath, 'utf8'));
const { dir, keys } = input;

const lo = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
if (lo.status !== 0) throw new Error(`ip link set lo up: ${lo.stderr || lo.error?.message}`);

const apis = await startApiStandIns({
  tls: { openai: input.tls.openai, anthropic: input.tls.anthropic },
  keys: { openai: keys.OPENAI_API_KEY, anthropic: keys.ANTHROPIC_API_KEY },
});
const gitServer = await startGitStandIn({ tls: input.tls.github, key: keys.GITHUB_TOKEN, repoPath: 'keyswap-test/repo.git', readme: input.readme });
phase('stand-ins');
const allRequests = () => [...apis.requests, ...gitServer.requests].sort((a, b) => a.at - b.at);

const testCaPath = path.join(dir, 'stand-in-ca.pem');
writeFileSync(testCaPath, input.testCaPem);
const configPath = path.join(dir, 'keyswap.yaml');
writeFileSync(configPath, matrixConfig({ dir, testCaPath, ports: { ...apis.ports, git: gitServer.port }, keys }));
const home = path.join(dir, 'home');
mkdirSync(home, { recursive: true });
// No .pyc next to the Python clients: the checkout stays as committed.
const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1' };

const serve = spawn(process.execPath, [KEYSWAP, 'serve', '--config', configPath], {
  cwd: dir,
  env: { ...baseEnv, ...Object.fromEntries(Object.entries(keys).map(([name, k]) => [`KEYSWAP_SECRET_${name}`, k.real])) },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let serveOut = '';
let serveErr = '';
serve.stdout.on('data', (c) => { serveOut += c; });
serve.stderr.on('data', (c) => { serveErr += c; });
const serveExited = new Promise((resolve) => serve.once('exit', resolve));
const listening = await Promise.race([
  new Promise((resolve) => {
    const check = () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(serveOut) && resolve(true);
    serve.stdout.on('data', check);
  }),
  serveExited.then(() => false),
  // unref: a pending bound must not keep the runner alive after its work is done.
  new Promise((resolve) => setTimeout(() => resolve(false), 15_000).unref()),
]);
phase('keyswap');

const go = CLIENTS.some((c) => c.cmd[0] === 'go-client') && skipReason([{ cmd: 'go' }]) === null ? buildGoClient(path.join(HERE, 'go'), dir) : null;

/** One client under `keyswap run`, bounded by CLIENT_TIMEOUT_MS (its whole process group is killed past it). */
function runClient(cmd) {
  return new Promise((resolve) => {
    const started = Date.now();
    const p = spawn(process.execPath, [KEYSWAP, 'run', '--config', configPath, '--', ...cmd], { cwd: HERE, env: baseEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    p.stdout.on('data', (c) => { stdout += c; });
    p.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, CLIENT_TIMEOUT_MS);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code, signal, timedOut, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** The last line of stdout that parses as a JSON object: the client's report. */
function reportOf(stdout) {
  for (const line of stdout.trim().split('\n').reverse()) {
    try {
      const v = JSON.parse(line);
      if (v !== null && typeof v === 'object') return v;
    } catch { /* not the report line */ }
  }
  return null;
}

phase('go build');
const clients = [];
for (const spec of CLIENTS) {
  let skipped = skipReason(spec.needs);
  let cmd = spec.cmd.map((a) => (a === 'node' ? process.execPath : a));
  if (skipped === null && cmd[0] === 'go-client') {
    if (go === null || 'error' in go) skipped = go?.error ?? 'go is not installed';
    else cmd = [go.binary, ...cmd.slice(1)];
  }
  if (skipped !== null) {
    clients.push({ name: spec.name, skipped });
    continue;
  }
  // Not a skip: a keyswap that cannot start (an invalid config) fails every client.
  if (!listening) {
    clients.push({ name: spec.name, skipped: null, notRun: 'keyswap did not start (see keyswap stderr)' });
    continue;
  }
  const before = new Set(allRequests());
  const r = await runClient(cmd);
  const requests = allRequests().filter((q) => !before.has(q));
  clients.push({ name: spec.name, skipped: null, ...r, report: reportOf(r.stdout), requests });
}

phase('clients');
serve.kill('SIGTERM');
await Promise.race([serveExited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
await apis.close();
await gitServer.close();
writeFileSync(
  resultsPath,
  JSON.stringify({ keyswap: { listening, stdout: serveOut, stderr: serveErr, auditPath: path.join(dir, 'audit.jsonl'), configPath }, phases, go: go && { seconds: go.seconds, error: 'error' in go ? go.error : null }, clients }, null, 1),
  { mode: 0o600 },
);
