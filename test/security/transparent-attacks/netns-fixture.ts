import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KEYSWAP, REPO } from '../../helpers/cli.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { waitFor } from '../../helpers/harness.js';

/*
 * The namespace setup of test/egress/egress-lock.test.ts, shared by the transparent-mode attack tests: "agent"
 * (keyswap as root, the locked agent and an unlocked local attacker as their own UIDs) and "internet" (an HTTPS +
 * plain HTTP server logging what reached it). Everything it makes is removed by stop().
 */
export const isRoot = process.getuid?.() === 0;
export const PH = 'sk-PLACEHOLDER-TRANSP-0123456789abcdef';
export const PORT = 14_322;
export const TRANSPARENT_PORT = 14_324;
export const TRANSPARENT_HTTP_PORT = 14_325;

export interface Fixture {
  readonly dir: string;
  readonly agentNs: string;
  readonly netIp: string;
  readonly netIp6: string;
  readonly agentIp: string;
  readonly agentUid: number;
  readonly attackerUid: number;
  readonly canary: string;
  keyswapOut: () => string;
  /** Runs as `uid` inside the agent namespace. */
  as: (uid: number, args: readonly string[], input?: string, timeoutMs?: number) => { status: number | null; out: string; ms: number };
  /** As root in the agent namespace. */
  root: (args: readonly string[]) => ReturnType<typeof spawnSync>;
  keyswapCli: (args: readonly string[]) => ReturnType<typeof spawnSync>;
  seenUpstream: () => { url: string; authorization: string | null }[];
  audit: () => string;
  stop: () => Promise<void>;
  keyswap: ChildProcess;
}

export async function startFixture(tag: string, opts: { extraYaml?: string; sysctls?: readonly string[]; env?: Record<string, string> } = {}): Promise<Fixture> {
  const id = `${tag}${process.pid % 1000}${randomBytes(1).toString('hex')}`;
  const agentNs = `kta-${id}`;
  const netNs = `kti-${id}`;
  const sub = `10.${233 + (process.pid % 10)}.${randomBytes(1)[0] ?? 1}`;
  const agentIp = `${sub}.1`;
  const netIp = `${sub}.2`;
  const h = randomBytes(2).toString('hex');
  const netIp6 = `fd00:6b74:${h}::2`;
  const agentIp6 = `fd00:6b74:${h}::1`;
  const agentUid = 63_000 + (process.pid % 500) + (randomBytes(1)[0] ?? 0);
  const attackerUid = agentUid + 700;
  const canary = `real-secret-transp-${randomBytes(8).toString('hex')}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-transp-'));
  chmodSync(dir, 0o755);
  const sh = (cmd: string, args: readonly string[]): ReturnType<typeof spawnSync> => spawnSync(cmd, [...args], { encoding: 'utf8', timeout: 20_000 });
  const must = (cmd: string, args: readonly string[]): void => {
    const r = sh(cmd, args);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${String(r.stderr)}`);
  };
  const inNs = (ns: string, args: readonly string[]): string[] => ['netns', 'exec', ns, ...args];
  const veth = `kt${id}`.slice(0, 12);
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) c.kill('SIGKILL');
    // The nft table lives in the agent namespace and goes with it.
    sh('ip', ['netns', 'del', agentNs]);
    sh('ip', ['netns', 'del', netNs]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    must('ip', ['netns', 'add', agentNs]);
    must('ip', ['netns', 'add', netNs]);
    must('ip', ['link', 'add', `${veth}a`, 'type', 'veth', 'peer', 'name', `${veth}i`]);
    must('ip', ['link', 'set', `${veth}a`, 'netns', agentNs]);
    must('ip', ['link', 'set', `${veth}i`, 'netns', netNs]);
    for (const [ns, dev, v4, v6] of [[agentNs, `${veth}a`, agentIp, agentIp6], [netNs, `${veth}i`, netIp, netIp6]] as const) {
      must('ip', inNs(ns, ['ip', 'link', 'set', 'lo', 'up']));
      must('ip', inNs(ns, ['ip', 'addr', 'add', `${v4}/24`, 'dev', dev]));
      must('ip', inNs(ns, ['ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']));
      must('ip', inNs(ns, ['ip', 'link', 'set', dev, 'up']));
    }
    for (const s of opts.sysctls ?? []) must('ip', inNs(agentNs, ['sysctl', '-qw', s]));
    const ca = createTestCa();
    const leaf = ca.issue(['api.example.test']);
    writeFileSync(path.join(dir, 'up-cert.pem'), leaf.certPem);
    writeFileSync(path.join(dir, 'up-key.pem'), leaf.keyPem);
    writeFileSync(path.join(dir, 'test-ca.pem'), ca.certPem);
    writeFileSync(path.join(dir, 'upstream.log'), '');
    const upstream = spawn('ip', inNs(netNs, [process.execPath, path.join(REPO, 'test/helpers/netns-upstream.mjs'), '::', '443', path.join(dir, 'up-cert.pem'), path.join(dir, 'up-key.pem'), path.join(dir, 'upstream.log'), '80']), { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(upstream);
    let upOut = '';
    upstream.stdout?.on('data', (c: Buffer) => { upOut += c.toString(); });
    if (!(await waitFor(() => upOut.includes('listening'), 10_000))) throw new Error('upstream did not start');
    writeFileSync(path.join(dir, 'keyswap.yaml'), `version: 1
listen: 127.0.0.1:${PORT}
state_dir: ${dir}/state
audit: { path: ${dir}/audit.jsonl }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
unmatched_destination_policy: deny
transparent: { listen: 127.0.0.1:${TRANSPARENT_PORT}, listen_http: 127.0.0.1:${TRANSPARENT_HTTP_PORT}, uid: ${agentUid} }
upstream:
  extra_ca_file: ${dir}/test-ca.pem
  resolve:
    "api.example.test:443": "${netIp}:443"
    "api.example.test:80": "${netIp}:80"
secrets:
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
      - { host: api.example.test, port: 80, allow_plaintext: true }
${opts.extraYaml ?? ''}`);
    let out = '';
    const keyswap = spawn('ip', inNs(agentNs, [process.execPath, KEYSWAP, 'serve', '--config', path.join(dir, 'keyswap.yaml')]), { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KEYSWAP_SECRET_TEST_API_KEY: canary, ...(opts.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(keyswap);
    keyswap.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
    keyswap.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
    if (!(await waitFor(() => out.includes('listening on http://'), 20_000))) throw new Error(`keyswap did not start: ${out}`);
    writeFileSync(path.join(dir, 'agent-ca.pem'), readFileSync(path.join(dir, 'state', 'ca.pem')), { mode: 0o644 });
    const keyswapCli = (args: readonly string[]): ReturnType<typeof spawnSync> => spawnSync('ip', inNs(agentNs, [process.execPath, KEYSWAP, ...args]), { encoding: 'utf8', timeout: 20_000, cwd: dir });
    return {
      dir, agentNs, netIp, netIp6, agentIp, agentUid, attackerUid, canary, keyswap,
      keyswapOut: () => out,
      as: (uid, args, input, timeoutMs = 60_000) => {
        const started = Date.now();
        const r = spawnSync('ip', inNs(agentNs, ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...args]), { encoding: 'utf8', timeout: timeoutMs, cwd: '/', input });
        return { status: r.status, out: `${r.stdout}${r.stderr}`, ms: Date.now() - started };
      },
      root: (args) => sh('ip', inNs(agentNs, args)),
      keyswapCli,
      seenUpstream: () => readFileSync(path.join(dir, 'upstream.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { url: string; authorization: string | null }),
      audit: () => { try { return readFileSync(path.join(dir, 'audit.jsonl'), 'utf8'); } catch { return ''; } },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
