import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaksIn } from '../helpers/secret-forms.js';
import { curlVia } from '../helpers/clients.js';
import { REPO } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

// Red-team: the agent-side Node preload (src/agent/node-preload.cts).
const PRELOAD = path.join(REPO, 'dist/agent/node-preload.cjs');
const NO_DNS = path.join(REPO, 'test/helpers/no-dns.cjs');

/** A CONNECT proxy standing in for whatever listens at HTTPS_PROXY: it relays every tunnel and keeps what it saw. */
async function startRelay(): Promise<{ port: number; connects: string[]; bytes: Buffer[]; close: () => Promise<void> }> {
  const connects: string[] = [];
  const bytes: Buffer[] = [];
  const server = net.createServer((c) => {
    let head = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      c.off('data', onData);
      const line = head.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
      connects.push(line);
      const m = /^CONNECT (\S+):(\d+) /.exec(line);
      if (!m) return void c.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
      // Loopback only: the relay never looks a name up or leaves the machine.
      if (!['127.0.0.1', '::1', 'localhost'].includes(host)) return void c.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      const up = net.connect({ host: host === 'localhost' ? '127.0.0.1' : host, port: Number(m[2]) }, () => {
        c.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        c.on('data', (x: Buffer) => bytes.push(x));
        up.on('data', (x: Buffer) => bytes.push(x));
        c.pipe(up).pipe(c);
      });
      up.on('error', () => c.destroy());
    };
    c.on('data', onData);
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, connects, bytes, close: () => new Promise((r) => server.close(() => r())) };
}

describe('keyswap itself started from a shell that ran eval "$(keyswap env)"', () => {
  let h: Harness;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  beforeAll(async () => {
    relay = await startRelay();
    // What `keyswap env` exports into the operator's shell; `keyswap serve`/`run` started there later inherits it.
    h = await startHarness({ env: { NODE_OPTIONS: `--require=${JSON.stringify(PRELOAD)}`, HTTPS_PROXY: `http://127.0.0.1:${relay.port}`, NODE_USE_ENV_PROXY: '1' } });
  });
  afterAll(async () => {
    await h.close();
    await relay.close();
  });

  it("keyswap's own secret-bearing upstream connections do not go through HTTPS_PROXY", async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status, r.stderr).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    // TLS is end to end, so the relay never reads the value; but keyswap's upstream leg must not depend on, or be
    // visible to, whatever owns the port HTTPS_PROXY names (serve deletes the variables, after the preload read them).
    const seen = Buffer.concat(relay.bytes).toString('latin1');
    expect(leaksIn(seen, h.canary)).toEqual([]);
    expect(relay.connects).toEqual([]);
  });
});

describe('preload routing (functional)', () => {
  const run = (script: string, env: Record<string, string>): Promise<{ stdout: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, ['--require', NO_DNS, '--require', PRELOAD, '-e', script], { env: { PATH: process.env.PATH ?? '', ...env } });
      let stdout = '';
      p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
      const t = setTimeout(() => p.kill(), 8_000);
      p.on('close', () => { clearTimeout(t); resolve({ stdout }); });
    });

  it('https over a unix socket (socketPath) is not turned into a CONNECT to the Host', async () => {
    const relay = await startRelay();
    try {
      const r = await run("const r = require('node:https').request({ host: 'api.example.test', socketPath: '/nonexistent/keyswap-test.sock', path: '/' }); r.on('error', (e) => console.log(e.code || e.message)); r.end();", { HTTPS_PROXY: `http://127.0.0.1:${relay.port}` });
      expect(relay.connects).toEqual([]);
      expect(r.stdout.trim()).toBe('ENOENT');
    } finally {
      await relay.close();
    }
  });

  it('an https.Agent asked for a connection without a callback still goes through the proxy', async () => {
    const relay = await startRelay();
    try {
      const r = await run("const s = new (require('node:https').Agent)().createConnection({ host: 'api.example.test', port: 443, servername: 'api.example.test' }); s.on('error', (e) => console.log(e.code || e.message)); setTimeout(() => process.exit(0), 500);", { HTTPS_PROXY: `http://127.0.0.1:${relay.port}` });
      expect(r.stdout.trim()).not.toBe('ENOTFOUND'); // ENOTFOUND: it dialled the name directly, past keyswap
      expect(relay.connects.length).toBe(1);
    } finally {
      await relay.close();
    }
  });
});
