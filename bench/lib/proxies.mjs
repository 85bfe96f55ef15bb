// The proxies under test, each a real process: keyswap (audit on disk, or on tmpfs where fsync costs nothing),
// the bare Node MITM (the ceiling: Node's HTTP and TLS with nothing of keyswap's own work), and mitmproxy.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

function waitForUrl(child, what) {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${what} did not start`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
  });
}

/** Extra node flags for both Node proxies, e.g. BENCH_NODE_FLAGS=--perf-basic-prof for `perf record`. */
const nodeFlags = () => (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

/**
 * keyswap with the env backend and one header binding; `auditDir` decides what an fsync costs, `repo` which build
 * runs; `top` adds top-level YAML (usage:, shared_state:), `binding` keys to the binding (rate:).
 */
export async function startKeyswap({ repo = REPO, dir, auditDir, upstreamPort, extraPorts = [], caPath, placeholder, secret, top = '', binding = '', secrets = '', env = {} }) {
  const id = randomBytes(3).toString('hex');
  const stateDir = path.join(dir, `state-${id}`);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const cfg = path.join(dir, `keyswap-${id}.yaml`);
  writeFileSync(cfg, `version: 1
listen: 127.0.0.1:0
state_dir: ${stateDir}
audit: { path: ${path.join(auditDir, `audit-${id}.jsonl`)} }
backend: { type: env }
upstream: { extra_ca_file: ${caPath} }
${top}
secrets:
  BENCH_KEY:
    placeholder: "${placeholder}"
    inject: { header: Authorization, format: "Bearer {BENCH_KEY}" }
    bindings: [ ${[upstreamPort, ...extraPorts].map((port) => `{ host: localhost, port: ${port}${binding} }`).join(', ')} ]
${secrets}`);
  const prof = [...nodeFlags(), ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : [])];
  const child = spawn(process.execPath, [...prof, path.join(repo, 'dist/cli/main.js'), 'serve', '--config', cfg, '--log-level', 'error'], {
    env: { PATH: process.env.PATH, KEYSWAP_SECRET_BENCH_KEY: secret, ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await waitForUrl(child, 'keyswap');
  return { url, child, caPem: readFileSync(path.join(stateDir, 'ca.pem'), 'utf8') };
}

export async function startBare({ dir, tls, caPath, placeholder, secret, h2 = false }) {
  writeFileSync(path.join(dir, 'bare-cert.pem'), tls.certPem);
  writeFileSync(path.join(dir, 'bare-key.pem'), tls.keyPem);
  const prof = [...nodeFlags(), ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.join(process.env.BENCH_PROF, 'bare')] : [])];
  const child = spawn(process.execPath, [...prof, path.join(REPO, h2 ? 'bench/peers/bare-h2-mitm.mjs' : 'bench/peers/bare-mitm.mjs')], {
    env: { PATH: process.env.PATH, BARE_CERT: path.join(dir, 'bare-cert.pem'), BARE_KEY: path.join(dir, 'bare-key.pem'), BARE_UPSTREAM_CA: caPath, PLACEHOLDER: placeholder, SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { url: await waitForUrl(child, 'bare MITM'), child, caPem: tls.caPem };
}

/** Debian's mitmproxy with the same header swap (bench/peers/header_swap.py); installed when running as root. */
export async function startMitmproxy({ dir, caPath, placeholder, secret }) {
  if (!existsSync('/usr/bin/mitmdump')) {
    if (process.getuid?.() === 0) spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'mitmproxy'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (!existsSync('/usr/bin/mitmdump')) return null;
  }
  const confdir = mkdtempSync(path.join(dir, 'mitm-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  // stream_large_bodies: without it mitmproxy holds a whole 1 GiB body in memory; any real deployment sets it.
  const child = spawn('/usr/bin/mitmdump', ['-q', '--listen-host', '127.0.0.1', '--listen-port', String(port), '--set', `confdir=${confdir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${caPath}`, '--set', 'stream_large_bodies=1m', '-s', path.join(REPO, 'bench/peers/header_swap.py')],
  { env: { ...process.env, BENCH_PLACEHOLDER: placeholder, BENCH_SECRET: secret }, stdio: 'ignore' });
  const caFile = path.join(confdir, 'mitmproxy-ca-cert.pem');
  for (let i = 0; i < 100 && !existsSync(caFile); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500));
  return existsSync(caFile) ? { url: `http://127.0.0.1:${port}`, child, caPem: readFileSync(caFile, 'utf8') } : null;
}
