import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, chownSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCollect, KEYSWAP } from '../helpers/cli.js';
import { startHarness, type Harness } from '../helpers/harness.js';

/*
 * Issue #33: while keyswap is down (a restart, a crash), another local process can bind its port and pose as it:
 * answer healthz, receive an agent's client token and its traffic. keyswap.socket (socket activation) keeps the
 * port held by systemd across restarts, and `keyswap run` checks that what answers proves it holds keyswap's
 * identity key before it sends anything. Root only: the agent runs as nobody, who cannot read keyswap's state
 * directory (as under keyswap install), so run finds keyswap at the config's listen address.
 */

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/**
 * What systemd does for keyswap.socket, in small: binds the port, keeps it bound, and starts keyswap with the
 * listening socket as fd 3 and LISTEN_PID/LISTEN_FDS naming it. Commands on stdin: `start`, `stop`.
 */
const FAKE_SYSTEMD = `
import os, signal, socket, subprocess, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(64)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
print('bound', s.getsockname()[1], flush=True)
child = None
for line in sys.stdin:
    if line.strip() == 'start':
        child = subprocess.Popen(['sh', '-c', 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@"', *sys.argv[2:]], pass_fds=(3,))
    elif line.strip() == 'stop' and child is not None:
        child.send_signal(signal.SIGTERM)
        child.wait()
        print('stopped', child.returncode, flush=True)
`;

class FakeSystemd {
  private out = '';
  private constructor(private readonly p: ChildProcessWithoutNullStreams, readonly port: number) {
    p.stdout.on('data', (c: Buffer) => { this.out += c.toString(); });
  }

  static async hold(port: number, argv: readonly string[], env: Record<string, string>): Promise<FakeSystemd> {
    const p = spawn('python3', ['-c', FAKE_SYSTEMD, String(port), ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let early = '';
    p.stderr.on('data', (c: Buffer) => { early += c.toString(); });
    const bound = await new Promise<number>((resolve, reject) => {
      let text = '';
      const onData = (c: Buffer): void => {
        text += c.toString();
        const m = /^bound (\d+)$/m.exec(text);
        if (m !== null) { p.stdout.off('data', onData); resolve(Number(m[1])); }
      };
      p.stdout.on('data', onData);
      p.once('exit', () => reject(new Error(`fake systemd exited: ${early}`)));
    });
    return new FakeSystemd(p, bound);
  }

  /** Starts keyswap on the held socket and waits until it says it listens. */
  async start(): Promise<void> {
    const mark = this.out.length;
    this.p.stdin.write('start\n');
    await this.until((text) => text.slice(mark).includes(`listening on http://127.0.0.1:${this.port}`), 'keyswap to listen');
  }

  /** keyswap gets SIGTERM and exits; the socket stays bound here. */
  async stop(): Promise<void> {
    const mark = this.out.length;
    this.p.stdin.write('stop\n');
    await this.until((text) => /^stopped /m.test(text.slice(mark)), 'keyswap to stop');
  }

  async release(): Promise<void> {
    this.p.stdin.end();
    await new Promise((r) => { if (this.p.exitCode !== null) r(null); else this.p.once('exit', r); });
  }

  private async until(check: (text: string) => boolean, what: string): Promise<void> {
    for (let i = 0; i < 300 && !check(this.out); i++) await new Promise((r) => setTimeout(r, 50));
    if (!check(this.out)) throw new Error(`waited 15 s for ${what}:\n${this.out}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

let h: Harness;
let port = 0;
let env: Record<string, string> = {};
const configPath = (): string => path.join(h.dir, 'keyswap.yaml');
const agentHome = (): string => path.join(h.dir, 'agent-home');
const started: FakeSystemd[] = [];

beforeAll(async () => {
  if (!isRoot) return;
  h = await startHarness();
  await h.stop();
  // Laid out as install leaves it: the state directory private to keyswap (root here), the config, the CA and the
  // identity public key readable beside it, the config listening on a fixed port.
  port = await freePort();
  writeFileSync(configPath(), readFileSync(configPath(), 'utf8').replace(/^listen: .*$/m, `listen: 127.0.0.1:${port}`), { mode: 0o644 });
  chmodSync(h.dir, 0o755);
  chmodSync(path.join(h.dir, 'state'), 0o700);
  copyFileSync(path.join(h.dir, 'state', 'ca.pem'), path.join(h.dir, 'ca.pem'));
  copyFileSync(path.join(h.dir, 'state', 'identity.pub'), path.join(h.dir, 'identity.pub'));
  mkdirSync(agentHome(), { mode: 0o700 });
  chownSync(agentHome(), NOBODY, NOBODY);
  env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: h.dir, KEYSWAP_SECRET_TEST_API_KEY: h.canary };
}, 60_000);

afterAll(async () => {
  if (!isRoot) return;
  for (const s of started) {
    await s.stop().catch(() => undefined);
    await s.release();
  }
  await h.close();
});

async function holdAndServe(at: number): Promise<FakeSystemd> {
  const s = await FakeSystemd.hold(at, [process.execPath, KEYSWAP, 'serve', '--config', configPath()], env);
  started.push(s);
  await s.start();
  return s;
}

/** `keyswap run` as the agent's user (nobody), running `script` under sh; `marker` is a file the command makes first. */
function runAsAgent(script: string) {
  return cliCollect(['run', '--config', configPath(), '--', 'sh', '-c', script], { via: asNobody, env: { HOME: agentHome() }, timeoutMs: 30_000 });
}

describe.skipIf(!isRoot)('a process squatting on keyswap\'s port', () => {
  it('socket activation: the port stays bound while keyswap is down, and a connection made then is served after the restart', async () => {
    const systemd = await holdAndServe(port);
    const before = await runAsAgent('curl -sS --max-time 10 -H "Authorization: Bearer $TEST_API_KEY" https://api.example.test/v1/echo >/dev/null && echo ok');
    expect(before.stdout.trim(), before.stderr).toBe('ok');
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);

    await systemd.stop();
    expect(await canBind(port)).toBe(false); // nothing else can take it

    // A request sent while keyswap is down waits in the socket's queue for the keyswap that comes back.
    const queued = new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('GET http://keyswap.invalid/healthz HTTP/1.1\r\nHost: keyswap.invalid\r\nConnection: close\r\n\r\n'));
      let got = '';
      c.on('data', (d: Buffer) => { got += d.toString('latin1'); });
      c.on('end', () => resolve(got));
      c.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 300));
    await systemd.start();
    expect(await queued).toMatch(/^HTTP\/1\.1 200 /);

    await systemd.stop();
    await systemd.release();
    started.splice(started.indexOf(systemd), 1);
  });

  it('keyswap run refuses a squatter that answers healthz, even one relaying the identity question to the real keyswap elsewhere; nothing is sent and the command never starts', async () => {
    // The real keyswap, with its key, on another port; the squatter on the config's port relays /identity to it.
    const elsewhere = await holdAndServe(0);
    const seen: { method: string; url: string; auth: string | undefined }[] = [];
    const relayed: string[] = [];
    const squatter = http.createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers['proxy-authorization'] });
      if ((req.url ?? '').startsWith('http://keyswap.invalid/identity')) {
        http.get({ host: '127.0.0.1', port: elsewhere.port, path: req.url }, (up) => {
          let body = '';
          up.on('data', (c: Buffer) => { body += c.toString(); });
          up.on('end', () => { relayed.push(body); res.writeHead(up.statusCode ?? 502, { 'content-type': 'application/json' }).end(body); });
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    });
    squatter.on('connect', (req, socket) => {
      seen.push({ method: 'CONNECT', url: req.url ?? '', auth: req.headers['proxy-authorization'] });
      socket.destroy();
    });
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const marker = path.join(agentHome(), 'started');
      const r = await runAsAgent(`touch ${marker}; curl -sS --max-time 5 https://api.example.test/v1/echo`);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`what answers on 127.0.0.1:${port} is not the keyswap of ${configPath()}`);
      expect(existsSync(marker)).toBe(false);
      expect(seen.map((s) => s.url.replace(/nonce=[0-9a-f]+/, 'nonce=…'))).toEqual(['http://keyswap.invalid/healthz', 'http://keyswap.invalid/identity?nonce=…']);
      // The relay worked: the real keyswap signed, but for the address it was asked on, not the squatted one.
      expect(relayed.map((b) => (JSON.parse(b) as { address: string }).address)).toEqual([`127.0.0.1:${elsewhere.port}`]);
      expect(r.stdout + r.stderr).not.toContain(h.canary);
    } finally {
      await new Promise((r) => squatter.close(r));
      await elsewhere.stop();
      await elsewhere.release();
      started.splice(started.indexOf(elsewhere), 1);
    }
  });
});
