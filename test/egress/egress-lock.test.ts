import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYSWAP, REPO } from '../helpers/cli.js';
import { createTestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/harness.js';

/*
 * Issue #29, item 1: the egress lock, for real. Two network namespaces this test makes: "agent" (keyswap and the
 * agent, as root and as another UID) and "internet" (an HTTPS server on its own address, over a veth pair, IPv4 and
 * IPv6). Without the lock the agent's UID reaches the server directly; with `keyswap egress lock --uid` its direct
 * TCP (curl --noproxy '*', both address families) and UDP fail at once, while the same request through keyswap
 * succeeds with the secret injected; unlock restores direct access. Needs root (CI runs as root).
 */

const id = `${process.pid % 10000}${randomBytes(1).toString('hex')}`;
const AGENT_NS = `ksa-${id}`;
const NET_NS = `ksi-${id}`;
const SUBNET = `10.231.${(process.pid % 200) + 20}`;
const AGENT_IP = `${SUBNET}.1`;
const NET_IP = `${SUBNET}.2`;
const NET_IP6 = `fd00:ks:${(process.pid % 0xffff).toString(16)}::2`.replace('ks', '6b73');
const AGENT_IP6 = NET_IP6.replace(/::2$/, '::1');
const AGENT_UID = 64_000 + (process.pid % 1000);
const PORT = 14_322;
const TRANSPARENT_PORT = 14_324;
const TRANSPARENT_HTTP_PORT = 14_325;
const PH = 'sk-PLACEHOLDER-EGRESS-0123456789abcdef';
const CANARY = `real-secret-egress-${randomBytes(8).toString('hex')}`;
const isRoot = process.getuid?.() === 0;

let dir = '';
let upstream: ChildProcess | null = null;
let keyswap: ChildProcess | null = null;
let keyswapOut = '';

const sh = (cmd: string, args: readonly string[]): ReturnType<typeof spawnSync> => spawnSync(cmd, [...args], { encoding: 'utf8', timeout: 20_000 });
const must = (cmd: string, args: readonly string[]): void => {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${String(r.stderr)}`);
};
const inNs = (ns: string, args: readonly string[]): string[] => ['netns', 'exec', ns, ...args];
/** A command as the agent: its own UID, in the agent's namespace; timed, with its exit code and output. */
function asAgent(args: readonly string[]): { status: number | null; ms: number; out: string } {
  const started = Date.now();
  const r = spawnSync('ip', inNs(AGENT_NS, ['setpriv', `--reuid=${AGENT_UID}`, `--regid=${AGENT_UID}`, '--clear-groups', ...args]), { encoding: 'utf8', timeout: 20_000, cwd: '/' });
  return { status: r.status, ms: Date.now() - started, out: `${r.stdout}${r.stderr}` };
}
const keyswapCli = (args: readonly string[]): ReturnType<typeof spawnSync> => spawnSync('ip', inNs(AGENT_NS, [process.execPath, KEYSWAP, ...args]), { encoding: 'utf8', timeout: 20_000, cwd: dir });
const seenUpstream = (): { url: string; authorization: string | null }[] =>
  readFileSync(path.join(dir, 'upstream.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { url: string; authorization: string | null });

beforeAll(async () => {
  if (!isRoot) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-egress-'));
  chmodSync(dir, 0o755);
  must('ip', ['netns', 'add', AGENT_NS]);
  must('ip', ['netns', 'add', NET_NS]);
  must('ip', ['link', 'add', `ksa${id}`, 'type', 'veth', 'peer', 'name', `ksi${id}`]);
  must('ip', ['link', 'set', `ksa${id}`, 'netns', AGENT_NS]);
  must('ip', ['link', 'set', `ksi${id}`, 'netns', NET_NS]);
  for (const [ns, dev, v4, v6] of [[AGENT_NS, `ksa${id}`, AGENT_IP, AGENT_IP6], [NET_NS, `ksi${id}`, NET_IP, NET_IP6]] as const) {
    must('ip', inNs(ns, ['ip', 'link', 'set', 'lo', 'up']));
    must('ip', inNs(ns, ['ip', 'addr', 'add', `${v4}/24`, 'dev', dev]));
    must('ip', inNs(ns, ['ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']));
    must('ip', inNs(ns, ['ip', 'link', 'set', dev, 'up']));
  }
  const ca = createTestCa();
  const leaf = ca.issue(['api.example.test']);
  writeFileSync(path.join(dir, 'up-cert.pem'), leaf.certPem);
  writeFileSync(path.join(dir, 'up-key.pem'), leaf.keyPem);
  writeFileSync(path.join(dir, 'test-ca.pem'), ca.certPem);
  writeFileSync(path.join(dir, 'upstream.log'), '');
  // One server, both families ('::' takes IPv4 too unless the namespace says otherwise).
  upstream = spawn('ip', inNs(NET_NS, [process.execPath, path.join(REPO, 'test/helpers/netns-upstream.mjs'), '::', '443', path.join(dir, 'up-cert.pem'), path.join(dir, 'up-key.pem'), path.join(dir, 'upstream.log'), '80']), { stdio: ['ignore', 'pipe', 'pipe'] });
  let upOut = '';
  upstream.stdout?.on('data', (c: Buffer) => { upOut += c.toString(); });
  expect(await waitFor(() => upOut.includes('listening'), 10_000)).toBe(true);

  writeFileSync(path.join(dir, 'keyswap.yaml'), `version: 1
listen: 127.0.0.1:${PORT}
state_dir: ${dir}/state
audit: { path: ${dir}/audit.jsonl }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
unmatched_destination_policy: deny
transparent: { listen: 127.0.0.1:${TRANSPARENT_PORT}, listen_http: 127.0.0.1:${TRANSPARENT_HTTP_PORT}, uid: ${AGENT_UID} }
upstream:
  extra_ca_file: ${dir}/test-ca.pem
  resolve:
    "api.example.test:443": "${NET_IP}:443"
    "api.example.test:80": "${NET_IP}:80"
secrets:
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
      - { host: api.example.test, port: 80, allow_plaintext: true }
`);
  keyswap = spawn('ip', inNs(AGENT_NS, [process.execPath, KEYSWAP, 'serve', '--config', path.join(dir, 'keyswap.yaml')]), { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KEYSWAP_SECRET_TEST_API_KEY: CANARY }, stdio: ['ignore', 'pipe', 'pipe'] });
  keyswap.stdout?.on('data', (c: Buffer) => { keyswapOut += c.toString(); });
  keyswap.stderr?.on('data', (c: Buffer) => { keyswapOut += c.toString(); });
  expect(await waitFor(() => keyswapOut.includes('listening on http://'), 20_000), keyswapOut).toBe(true);
  // The agent's copy of keyswap's CA: the state directory is keyswap's alone.
  writeFileSync(path.join(dir, 'agent-ca.pem'), readFileSync(path.join(dir, 'state', 'ca.pem')), { mode: 0o644 });
}, 60_000);

afterAll(async () => {
  if (!isRoot) return;
  keyswap?.kill('SIGTERM');
  upstream?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  keyswap?.kill('SIGKILL');
  upstream?.kill('SIGKILL');
  sh('ip', ['netns', 'del', AGENT_NS]);
  sh('ip', ['netns', 'del', NET_NS]);
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

const direct4 = (): ReturnType<typeof asAgent> => asAgent(['curl', '-sk', '--noproxy', '*', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `https://${NET_IP}/direct`]);
const direct6 = (): ReturnType<typeof asAgent> => asAgent(['curl', '-sk', '--noproxy', '*', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `https://[${NET_IP6}]/direct6`]);
/** UDP to the server's address: a connected socket learns of the reject at once (ECONNREFUSED/EPERM), never waits out its timeout. */
const udp = (): ReturnType<typeof asAgent> => asAgent(['/usr/bin/python3', '-c', `import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
try:
  s.connect(("${NET_IP}", 53)); s.send(b"x"); s.recv(10); print("answered")
except socket.timeout: print("timeout"); sys.exit(3)
except OSError as e: print("refused", e.errno); sys.exit(4)`]);
const viaKeyswap = (): ReturnType<typeof asAgent> => asAgent(['curl', '-s', '--max-time', '10', '--proxy', `http://127.0.0.1:${PORT}`, '--cacert', path.join(dir, 'agent-ca.pem'), '-H', `Authorization: Bearer ${PH}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/through-keyswap']);

describe.skipIf(!isRoot)('keyswap egress lock, in network namespaces', () => {
  it('without the lock the agent reaches the internet directly; with it, direct TCP (IPv4, IPv6, --noproxy) and UDP fail at once while keyswap injects; unlock restores', () => {
    const before = direct4();
    expect(before.out).toBe('200');
    expect(direct6().out).toBe('200');

    const lock = keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID), '--config', path.join(dir, 'keyswap.yaml')]);
    expect(lock.status, String(lock.stderr)).toBe(0);
    expect(String(lock.stdout)).toContain(`locked UID ${AGENT_UID}: it may connect only to 127.0.0.1:${PORT}`);
    const status = keyswapCli(['egress', 'status']);
    expect(String(status.stdout)).toContain(`UID ${AGENT_UID}: may connect only to 127.0.0.1:${PORT}/tcp`);

    const d4 = direct4();
    const d6 = direct6();
    const u = udp();
    console.log(`egress lock: direct IPv4 curl exit ${d4.status} in ${d4.ms} ms, IPv6 exit ${d6.status} in ${d6.ms} ms, UDP "${u.out.trim()}" in ${u.ms} ms`);
    expect(d4.out).toBe('000');
    expect(d4.status).toBe(7); // curl: failed to connect
    expect(d6.status).toBe(7);
    expect(u.out).toMatch(/^refused/);
    // At once: a reject, not a drop (curl's --max-time is 10 s, the UDP socket's timeout 5 s).
    expect(Math.max(d4.ms, d6.ms, u.ms)).toBeLessThan(3000);
    expect(seenUpstream().filter((r) => r.url.startsWith('/direct'))).toHaveLength(2); // only the two before the lock

    const through = viaKeyswap();
    expect(through.out, through.out).toBe('200');
    expect(seenUpstream().find((r) => r.url === '/v1/through-keyswap')?.authorization).toBe(`Bearer ${CANARY}`);
    // keyswap's own user is not locked: it reached the upstream above. root (this test) still reaches it directly.
    const asRoot = sh('ip', inNs(AGENT_NS, ['curl', '-sk', '--noproxy', '*', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `https://${NET_IP}/root-direct`]));
    expect(String(asRoot.stdout)).toBe('200');

    // Locking again is idempotent; unlock lets the agent out again.
    expect(keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID), '--config', path.join(dir, 'keyswap.yaml')]).status).toBe(0);
    const unlock = keyswapCli(['egress', 'unlock', '--uid', String(AGENT_UID)]);
    expect(unlock.status, String(unlock.stderr)).toBe(0);
    expect(direct4().out).toBe('200');
    expect(String(keyswapCli(['egress', 'status']).stdout)).toContain('no UID is locked');
    expect(keyswapOut).not.toContain(CANARY);
  });

  it('refuses what would break keyswap or mean nothing: root, keyswap\'s own user, no user, a bad resolver address', () => {
    const cfg = path.join(dir, 'keyswap.yaml');
    const root = keyswapCli(['egress', 'lock', '--uid', '0', '--config', cfg]);
    expect(root.status).toBe(2);
    expect(String(root.stderr)).toContain('root cannot be locked');
    const none = keyswapCli(['egress', 'lock', '--config', cfg]);
    expect(none.status).toBe(2);
    expect(String(none.stderr)).toContain('--uid UID or --user NAME');
    const dns = keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID), '--dns', 'resolver.example', '--config', cfg]);
    expect(dns.status).toBe(2);
    expect(String(dns.stderr)).toContain("--dns resolver.example: expected the resolver's IP address");
    // The state directory's owner is keyswap's user (root here, refused above); a chown shows the rule.
    spawnSync('chown', [String(AGENT_UID + 1), path.join(dir, 'state')]);
    const own = keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID + 1), '--config', cfg]);
    spawnSync('chown', ['0', path.join(dir, 'state')]);
    expect(own.status).toBe(2);
    expect(String(own.stderr)).toContain("it is keyswap's own user");
    // Under forward_unmodified, keyswap would tunnel the locked user anywhere: a lock would lock nothing.
    const open = path.join(dir, 'open.yaml');
    writeFileSync(open, readFileSync(cfg, 'utf8').replace('unmatched_destination_policy: deny', 'unmatched_destination_policy: forward_unmodified'));
    const loose = keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID), '--config', open]);
    expect(loose.status).toBe(2);
    expect(String(loose.stderr)).toContain('set  unmatched_destination_policy: deny  first');
    // --transparent for a UID the listener does not serve.
    const other = keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID + 2), '--transparent', '--config', cfg]);
    expect(other.status).toBe(2);
    expect(String(other.stderr)).toContain(`serves transparent connections for UID ${AGENT_UID} only`);
  });

  it('--transparent: an agent with no proxy settings at all gets the secret injected and audited; a host keyswap does not decrypt, or no SNI, is refused', () => {
    const cfg = path.join(dir, 'keyswap.yaml');
    const lock = keyswapCli(['egress', 'lock', '--uid', String(AGENT_UID), '--transparent', '--config', cfg]);
    expect(lock.status, String(lock.stderr)).toBe(0);
    expect(String(lock.stdout)).toContain('its HTTPS (IPv4 and IPv6) goes to the transparent listener, and its port 80 to transparent.listen_http');
    try {
      // No HTTPS_PROXY, no --proxy: the agent dials the internet's address itself (--resolve: no DNS query).
      const plain = asAgent(['curl', '-s', '--noproxy', '*', '--max-time', '10', '--resolve', `api.example.test:443:${NET_IP}`, '--cacert', path.join(dir, 'agent-ca.pem'),
        '-H', `Authorization: Bearer ${PH}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/transparent']);
      expect(plain.out, keyswapOut.slice(-1500)).toBe('200');
      expect(seenUpstream().find((r) => r.url === '/v1/transparent')?.authorization).toBe(`Bearer ${CANARY}`);
      const audit = readFileSync(path.join(dir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit.some((r) => r.type === 'inject_decision' && r.decision === 'allowed' && (r.destination as { host: string }).host === 'api.example.test' && (r.destination as { path_prefix: string }).path_prefix === '/v1/transparent')).toBe(true);
      // The same over IPv6: the agent dials the internet's IPv6 address; the redirect lands on keyswap's ::1.
      const six = asAgent(['curl', '-s', '-6', '--noproxy', '*', '--max-time', '10', '--resolve', `api.example.test:443:[${NET_IP6}]`, '--cacert', path.join(dir, 'agent-ca.pem'),
        '-H', `Authorization: Bearer ${PH}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/transparent6']);
      expect(six.out, keyswapOut.slice(-1500)).toBe('200');
      expect(seenUpstream().find((r) => r.url === '/v1/transparent6')?.authorization).toBe(`Bearer ${CANARY}`);
      // Port 80, plain HTTP: served by its Host header, injected where the binding allows plaintext.
      const plain80 = asAgent(['curl', '-s', '--noproxy', '*', '--max-time', '10', '--resolve', `api.example.test:80:${NET_IP}`,
        '-H', `Authorization: Bearer ${PH}`, '-o', '/dev/null', '-w', '%{http_code}', 'http://api.example.test/v1/plain80']);
      expect(plain80.out, keyswapOut.slice(-1500)).toBe('200');
      expect(seenUpstream().find((r) => r.url === '/v1/plain80')?.authorization).toBe(`Bearer ${CANARY}`);
      // A Host keyswap does not bind on port 80: refused (deny), nothing reaches the internet.
      const unbound80 = asAgent(['curl', '-s', '--noproxy', '*', '--max-time', '10', '--resolve', `elsewhere.example.test:80:${NET_IP}`, '-o', '/dev/null', '-w', '%{http_code}', 'http://elsewhere.example.test/unbound80']);
      expect(unbound80.out).toBe('403');
      expect(seenUpstream().some((r) => r.url === '/unbound80')).toBe(false);
      // A name keyswap does not decrypt: refused (and audited), never tunnelled blind.
      const other = asAgent(['curl', '-s', '--noproxy', '*', '--max-time', '10', '--resolve', `elsewhere.example.test:443:${NET_IP}`, '-k', '-o', '/dev/null', '-w', '%{http_code}', 'https://elsewhere.example.test/']);
      expect(other.out).toBe('000');
      expect(seenUpstream().some((r) => r.url === '/' )).toBe(false);
      // No SNI (an address, not a name): no certificate, no connection.
      const bare = asAgent(['curl', '-s', '--noproxy', '*', '--max-time', '10', '-k', '-o', '/dev/null', '-w', '%{http_code}', `https://${NET_IP}/no-sni`]);
      expect(bare.out).toBe('000');
      expect(seenUpstream().some((r) => r.url === '/no-sni')).toBe(false);
      const after = readFileSync(path.join(dir, 'audit.jsonl'), 'utf8');
      expect(after).toContain('"host":"elsewhere.example.test"');
      expect(after).not.toContain(CANARY);
    } finally {
      expect(keyswapCli(['egress', 'unlock', '--uid', String(AGENT_UID)]).status).toBe(0);
    }
  });
});
