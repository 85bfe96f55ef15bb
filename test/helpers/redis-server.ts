import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Debian's redis-server, which `.ci/run` installs; tests that need it are skipped with the reason when it is absent. */
export const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => spawnSync(p, ['--version']).status === 0) ?? null;

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGKILL, as a crash: nothing saved. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty unless `appendonly`). */
  start(): Promise<void>;
  /** A redis-cli command against it (for checks from the test). */
  cli(...args: string[]): string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A real redis-server on a free loopback port, with nothing saved to disk unless asked (`appendonly`). */
export async function startRedis(o: { readonly password?: string; readonly appendonly?: boolean; readonly tls?: { readonly certPem: string; readonly keyPem: string } } = {}): Promise<RedisServer> {
  if (REDIS_SERVER === null) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-redis-'));
  let child: ChildProcess | null = null;
  if (o.tls !== undefined) {
    writeFileSync(path.join(dir, 'cert.pem'), o.tls.certPem);
    writeFileSync(path.join(dir, 'key.pem'), o.tls.keyPem, { mode: 0o600 });
  }
  // With TLS: no plain port at all, as in deploy/kubernetes/overlays/gateway.
  const listen = o.tls === undefined ? ['--port', String(port)] : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', path.join(dir, 'cert.pem'), '--tls-key-file', path.join(dir, 'key.pem'), '--tls-auth-clients', 'no'];
  const args = [...listen, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', o.appendonly === true ? 'yes' : 'no', '--protected-mode', 'yes', ...(o.password === undefined ? [] : ['--requirepass', o.password])];
  const start = async (): Promise<void> => {
    child = spawn(REDIS_SERVER as string, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const until = Date.now() + 10_000;
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (up) return;
      if (Date.now() > until) throw new Error(`redis-server did not start on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (c === null || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
    child = null;
  };
  await start();
  return {
    port,
    url: `${o.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    kill,
    start,
    cli: (...a: string[]) => spawnSync('redis-cli', ['-p', String(port), ...(o.password === undefined ? [] : ['--no-auth-warning', '-a', o.password]), ...a], { encoding: 'utf8' }).stdout,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
