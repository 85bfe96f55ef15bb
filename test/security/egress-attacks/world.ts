// Shared namespace world for the attack29 tests: copied from test/egress/egress-lock.test.ts's approach.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KEYSWAP, REPO } from '../../helpers/cli.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { waitFor } from '../../helpers/harness.js';

export const isRoot = process.getuid?.() === 0;
export { sha } from '../../helpers/operator-cli.js';

export const sh = (cmd: string, args: readonly string[], opts: { cwd?: string; timeout?: number } = {}): ReturnType<typeof spawnSync> =>
  spawnSync(cmd, [...args], { encoding: 'utf8', timeout: opts.timeout ?? 20_000, cwd: opts.cwd ?? '/' });
export const must = (cmd: string, args: readonly string[]): void => {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${String(r.stderr)}`);
};
export const inNs = (ns: string, args: readonly string[]): string[] => ['netns', 'exec', ns, ...args];

/** A TCP + UDP recorder for the "internet": logs every payload it receives (and a line per connection). */
const RECORDER = `
import net from 'node:net'; import dgram from 'node:dgram'; import { appendFileSync } from 'node:fs';
const [log, port] = process.argv.slice(2);
const rec = (what) => appendFileSync(log, JSON.stringify(what) + '\\n');
net.createServer((s) => { rec({ tcp: 'open', from: s.remoteAddress }); s.on('data', (d) => { rec({ tcp: d.toString('latin1') }); s.write('PONG'); }); s.on('error', () => {}); }).listen(Number(port), '::', () => process.stdout.write('listening\\n'));
for (const t of ['udp4', 'udp6']) { const u = dgram.createSocket({ type: t, ipv6Only: t === 'udp6' }); u.on('message', (m) => rec({ udp: m.toString('latin1') })); u.bind(Number(port), t === 'udp4' ? '0.0.0.0' : '::'); }
`;

export interface World {
  readonly id: string;
  readonly agentNs: string;
  readonly netNs: string;
  readonly dir: string;
  readonly netIp: string;
  readonly netIp6: string;
  readonly agentIp: string;
  readonly procs: ChildProcess[];
  readonly ca: ReturnType<typeof createTestCa>;
  upstreamLog(): { url: string; authorization: string | null }[];
  recorderLog(): Record<string, string>[];
  /** Starts keyswap serve with this YAML in the agent namespace; returns its output accessor. */
  startKeyswap(name: string, yaml: string, env: Record<string, string>): Promise<{ proc: ChildProcess; out: () => string; cfg: string; caPem: string }>;
  asUid(uid: number, args: readonly string[], timeout?: number): { status: number | null; ms: number; out: string };
  spawnAsUid(uid: number, args: readonly string[]): ChildProcess;
  keyswapCli(args: readonly string[], cwd?: string): ReturnType<typeof spawnSync>;
  teardown(): Promise<void>;
}

export async function makeWorld(tag: string, octet: number): Promise<World> {
  const id = `${tag}${randomBytes(2).toString('hex')}`;
  const agentNs = `ksx-a-${id}`;
  const netNs = `ksx-i-${id}`;
  const subnet = `10.229.${octet}`;
  const agentIp = `${subnet}.1`;
  const netIp = `${subnet}.2`;
  const netIp6 = `fd00:6b73:29:${octet.toString(16)}::2`;
  const agentIp6 = netIp6.replace(/::2$/, '::1');
  const dir = mkdtempSync(path.join(os.tmpdir(), `ks-attack29-${tag}-`));
  chmodSync(dir, 0o755);
  const procs: ChildProcess[] = [];
  must('ip', ['netns', 'add', agentNs]);
  must('ip', ['netns', 'add', netNs]);
  const va = `kxa${id}`.slice(0, 15);
  const vi = `kxi${id}`.slice(0, 15);
  must('ip', ['link', 'add', va, 'type', 'veth', 'peer', 'name', vi]);
  must('ip', ['link', 'set', va, 'netns', agentNs]);
  must('ip', ['link', 'set', vi, 'netns', netNs]);
  for (const [ns, dev, v4, v6] of [[agentNs, va, agentIp, agentIp6], [netNs, vi, netIp, netIp6]] as const) {
    must('ip', inNs(ns, ['ip', 'link', 'set', 'lo', 'up']));
    must('ip', inNs(ns, ['ip', 'addr', 'add', `${v4}/24`, 'dev', dev]));
    must('ip', inNs(ns, ['ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']));
    must('ip', inNs(ns, ['ip', 'link', 'set', dev, 'up']));
  }
  // A default route out of the agent's namespace: an address nobody has (an attacker's) is then dialled via the internet's side.
  must('ip', inNs(agentNs, ['ip', 'route', 'add', 'default', 'via', netIp]));
  // ping sockets for every group in the agent's namespace: ICMP must then be stopped by the lock itself.
  must('ip', inNs(agentNs, ['sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']));
  const ca = createTestCa();
  const leaf = ca.issue(['api.example.test', 'elsewhere.example.test']);
  writeFileSync(path.join(dir, 'up-cert.pem'), leaf.certPem);
  writeFileSync(path.join(dir, 'up-key.pem'), leaf.keyPem);
  writeFileSync(path.join(dir, 'test-ca.pem'), ca.certPem);
  writeFileSync(path.join(dir, 'upstream.log'), '');
  writeFileSync(path.join(dir, 'recorder.log'), '');
  writeFileSync(path.join(dir, 'recorder.mjs'), RECORDER);
  const up = spawn('ip', inNs(netNs, [process.execPath, path.join(REPO, 'test/helpers/netns-upstream.mjs'), '::', '443', path.join(dir, 'up-cert.pem'), path.join(dir, 'up-key.pem'), path.join(dir, 'upstream.log')]), { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(up);
  let upOut = '';
  up.stdout?.on('data', (c: Buffer) => { upOut += c.toString(); });
  const recorder = spawn('ip', inNs(netNs, [process.execPath, path.join(dir, 'recorder.mjs'), path.join(dir, 'recorder.log'), '8080']), { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(recorder);
  let recOut = '';
  recorder.stdout?.on('data', (c: Buffer) => { recOut += c.toString(); });
  // A local service in the agent's namespace (loopback, both families), as root: "another local service".
  const local = spawn('ip', inNs(agentNs, [process.execPath, path.join(dir, 'recorder.mjs'), path.join(dir, 'local.log'), '18080']), { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(local);
  let localOut = '';
  local.stdout?.on('data', (c: Buffer) => { localOut += c.toString(); });
  writeFileSync(path.join(dir, 'local.log'), '');
  if (!(await waitFor(() => upOut.includes('listening') && recOut.includes('listening') && localOut.includes('listening'), 10_000))) throw new Error('helpers did not start');

  const asUid = (uid: number, args: readonly string[], timeout = 20_000): { status: number | null; ms: number; out: string } => {
    const started = Date.now();
    const r = spawnSync('ip', inNs(agentNs, ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...args]), { encoding: 'utf8', timeout, cwd: '/' });
    return { status: r.status, ms: Date.now() - started, out: `${r.stdout}${r.stderr}` };
  };
  return {
    id, agentNs, netNs, dir, netIp, netIp6, agentIp, procs, ca,
    upstreamLog: () => readFileSync(path.join(dir, 'upstream.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { url: string; authorization: string | null }),
    recorderLog: () => [path.join(dir, 'recorder.log'), path.join(dir, 'local.log')].flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>)),
    async startKeyswap(name, yaml, env) {
      const cfg = path.join(dir, `${name}.yaml`);
      writeFileSync(cfg, yaml);
      const proc = spawn('ip', inNs(agentNs, [process.execPath, KEYSWAP, 'serve', '--config', cfg]), { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(proc);
      let out = '';
      proc.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
      proc.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
      if (!(await waitFor(() => out.includes('listening on http://'), 20_000))) throw new Error(`keyswap ${name} did not start: ${out}`);
      const caPem = path.join(dir, `${name}-agent-ca.pem`);
      const stateDir = /state_dir: (\S+)/.exec(yaml)?.[1] ?? '';
      writeFileSync(caPem, readFileSync(path.join(stateDir, 'ca.pem')), { mode: 0o644 });
      return { proc, out: () => out, cfg, caPem };
    },
    asUid,
    spawnAsUid: (uid, args) => spawn('ip', inNs(agentNs, ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...args]), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] }),
    keyswapCli: (args, cwd) => spawnSync('ip', inNs(agentNs, [process.execPath, KEYSWAP, ...args]), { encoding: 'utf8', timeout: 20_000, cwd: cwd ?? dir }),
    async teardown() {
      for (const p of procs) p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      for (const p of procs) p.kill('SIGKILL');
      sh('ip', ['netns', 'del', agentNs]);
      sh('ip', ['netns', 'del', netNs]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Probes run as the agent (system python, readable by any UID): each prints one JSON line. */
export const PROBE_PY = `
import socket, sys, json, time, errno
res = {}
def tcp(name, fam, addr, payload):
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect(addr); s.sendall(payload.encode()); time.sleep(0.2)
        try: d = s.recv(10)
        except Exception as e: d = b''
        res[name] = 'connected:' + d.decode('latin1')
    except Exception as e: res[name] = 'err:' + type(e).__name__ + ':' + str(getattr(e, 'errno', ''))
    finally: s.close()
def udp(name, fam, addr, payload):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(2)
    try:
        s.connect(addr); s.send(payload.encode()); s.send(payload.encode()); time.sleep(0.2); s.send(payload.encode())
        res[name] = 'sent'
    except Exception as e: res[name] = 'err:' + type(e).__name__ + ':' + str(getattr(e, 'errno', ''))
def ping(name, fam, host):
    proto = socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        s = socket.socket(fam, socket.SOCK_DGRAM, proto); s.settimeout(2)
        pkt = bytes([8 if fam == socket.AF_INET else 128, 0, 0, 0, 0, 1, 0, 1]) + b'PINGPROBE'
        s.sendto(pkt, (host, 0)); d = s.recv(100); res[name] = 'reply'
    except Exception as e: res[name] = 'err:' + type(e).__name__ + ':' + str(getattr(e, 'errno', ''))
def raw(name):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP); res[name] = 'created'
    except Exception as e: res[name] = 'err:' + type(e).__name__ + ':' + str(getattr(e, 'errno', ''))
def sctp(name, host, port):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP); s.settimeout(3)
        s.connect((host, port)); res[name] = 'connected'
    except Exception as e: res[name] = 'err:' + type(e).__name__ + ':' + str(getattr(e, 'errno', ''))
cfg = json.loads(sys.argv[1])
for p in cfg:
    k = p['kind']; fam = socket.AF_INET6 if ':' in p.get('host', '') else socket.AF_INET
    if k == 'tcp': tcp(p['name'], fam, (p['host'], p['port']), p['payload'])
    elif k == 'tcp6mapped': tcp(p['name'], socket.AF_INET6, ('::ffff:' + p['host'], p['port']), p['payload'])
    elif k == 'udp': udp(p['name'], fam, (p['host'], p['port']), p['payload'])
    elif k == 'ping': ping(p['name'], fam, p['host'])
    elif k == 'raw': raw(p['name'])
    elif k == 'sctp': sctp(p['name'], p['host'], p['port'])
print(json.dumps(res))
`;
