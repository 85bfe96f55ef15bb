import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaksIn } from '../helpers/secret-forms.js';
import { REPO } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

// Red-team (second pass): the preload's tunnel stream (src/agent/node-preload.cts tunnel()) against proxies that
// misbehave, and against a real keyswap (keep-alive reuse, agent: false, a Host other than the connection's).
const PRELOAD = path.join(REPO, 'dist/agent/node-preload.cjs');
const NO_DNS = path.join(REPO, 'test/helpers/no-dns.cjs');

interface Run { readonly stdout: string; readonly stderr: string; readonly ms: number; readonly killed: boolean }
function run(script: string, env: Record<string, string>, limitMs = 6_000): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, ['--require', NO_DNS, '--require', PRELOAD, '-e', script], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    let killed = false;
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => { killed = true; p.kill('SIGKILL'); }, limitMs);
    p.on('close', () => { clearTimeout(t); resolve({ stdout, stderr, ms: Date.now() - t0, killed }); });
  });
}

/** A proxy that answers every connection as `answer` says, and keeps what it received. */
async function fakeProxy(answer: (c: net.Socket, head: string) => void): Promise<{ port: number; got: Buffer[]; close: () => Promise<void> }> {
  const got: Buffer[] = [];
  const server = net.createServer((c) => {
    let head = '';
    let answered = false;
    c.on('data', (d: Buffer) => {
      got.push(d);
      if (answered) return;
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) { answered = true; answer(c, head); }
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    got,
    close: () => new Promise((r) => { server.close(() => r()); setTimeout(r, 200).unref(); }),
  };
}

const REQUEST = "const r = require('node:https').get({ host: 'api.example.test', path: '/v1/x', headers: { authorization: 'Bearer " + PLACEHOLDER + "' } }, (res) => { console.log('status ' + res.statusCode); res.resume(); }); r.on('error', (e) => console.log('error ' + (e.code || e.message))); const keep = setTimeout(() => console.log('no outcome after 4 s'), 4000); r.on('error', () => clearTimeout(keep)); r.on('response', () => clearTimeout(keep));";

describe('preload tunnel against a misbehaving proxy', () => {
  const cases: [string, (c: net.Socket) => void][] = [
    ['closes the connection without answering', (c) => c.end()],
    ['sends half an answer, then closes', (c) => c.end('HTTP/1.1 200 Connection Est')],
    ['refuses with 407', (c) => c.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n')],
    ['refuses with 403 and keeps the connection open', (c) => c.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n')],
    ['sends bytes after its 200 answer in the same segment', (c) => c.write('HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03junk')],
    ['sends bytes after its 200 answer in a later segment', (c) => { c.write('HTTP/1.1 200 OK\r\n\r\n'); setTimeout(() => c.write('HTTP/1.1 200 OK\r\n\r\n'), 20); }],
    ['answers 200, then resets', (c) => { c.write('HTTP/1.1 200 OK\r\n\r\n'); setTimeout(() => c.resetAndDestroy(), 20); }],
    ['answers 200, then closes', (c) => { c.write('HTTP/1.1 200 OK\r\n\r\n'); setTimeout(() => c.end(), 20); }],
    ['answers a status line without a code', (c) => c.write('HTTP/1.1 OK\r\n\r\n')],
    ['answers 2000 (not a status code; read as 200, so the TLS hello goes to a proxy that never tunnels)', (c) => c.write('HTTP/1.1 2000 OK\r\n\r\n')],
  ];
  for (const [name, answer] of cases) {
    it(`the request fails promptly, sends nothing but the CONNECT, and the agent does not crash: proxy ${name}`, async () => {
      const proxy = await fakeProxy((c) => answer(c));
      try {
        const r = await run(REQUEST, { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` });
        expect(r.killed, `hung for ${r.ms} ms; stderr: ${r.stderr}`).toBe(false);
        expect(r.stdout).toMatch(/^error /);
        expect(r.stderr).not.toMatch(/Uncaught|throw er/);
        const seen = Buffer.concat(proxy.got).toString('latin1');
        expect(seen.startsWith('CONNECT api.example.test:443 HTTP/1.1\r\n')).toBe(true);
        expect(seen).not.toContain(PLACEHOLDER); // TLS or nothing: the request head never travels in the clear
      } finally {
        await proxy.close();
      }
    });
  }

  it('the proxy connection refused: fails at once', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await run(REQUEST, { HTTPS_PROXY: `http://127.0.0.1:${port}` });
    expect(r.killed).toBe(false);
    expect(r.stdout.trim()).toBe('error ECONNREFUSED');
  });

  it('the answer arriving a byte at a time is read whole', async () => {
    const proxy = await fakeProxy((c) => {
      const a = 'HTTP/1.1 403 Forbidden\r\nX-Pad: 1\r\n\r\n';
      let i = 0;
      const next = (): void => { if (i < a.length) { c.write(a[i++] as string); setTimeout(next, 2); } };
      next();
    });
    try {
      const r = await run(REQUEST, { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` });
      expect(r.killed).toBe(false);
      expect(r.stdout).toContain('403');
    } finally {
      await proxy.close();
    }
  });
});

describe('preload through a real keyswap', () => {
  let h: Harness;
  beforeAll(async () => { h = await startHarness(); }, 30_000);
  afterAll(async () => { await h.close(); });
  const env = (): Record<string, string> => ({ HTTPS_PROXY: h.proxyUrl, NODE_EXTRA_CA_CERTS: h.caPath });

  it('keep-alive: three requests on one pooled tunnel all reach api.example.test, each injected, echo scrubbed, and the process exits', async () => {
    const before = h.upstream.requests.length;
    const script = `
      const https = require('node:https');
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      let n = 0;
      const one = () => https.get({ host: 'api.example.test', path: '/v1/echo-forms', agent, headers: { authorization: 'Bearer ${PLACEHOLDER}' } }, (res) => {
        let b = ''; res.on('data', (c) => b += c); res.on('end', () => { console.log(res.statusCode, JSON.stringify(b)); if (++n < 3) one(); });
      }).on('error', (e) => console.log('error', e.message));
      one();`;
    const r = await run(script, env(), 10_000);
    expect(r.killed, r.stderr).toBe(false);
    expect(r.stdout.split("\n").filter((l) => l.startsWith("200")).length, r.stdout + r.stderr).toBe(3);
    expect(leaksIn(r.stdout, h.canary)).toEqual([]);
    const mine = h.upstream.requests.slice(before);
    expect(mine.length).toBe(3);
    for (const q of mine) expect(q.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('agent: false goes through keyswap too', async () => {
    const before = h.upstream.requests.length;
    const r = await run(`require('node:https').get({ host: 'api.example.test', path: '/v1/echo', agent: false, headers: { authorization: 'Bearer ${PLACEHOLDER}' } }, (res) => { console.log(res.statusCode); res.resume(); }).on('error', (e) => console.log('error', e.code || e.message));`, env());
    expect(r.stdout.trim()).toBe('200');
    expect(h.upstream.requests.slice(before).map((q) => q.headers.authorization)).toEqual([`Bearer ${h.canary}`]);
  });

  it('a Host header naming the bound host on a connection to an unbound one gets no secret', async () => {
    const before = h.upstream.requests.length;
    const r = await run(`require('node:https').get({ host: 'unbound.example.test', path: '/v1/echo', headers: { host: 'api.example.test', authorization: 'Bearer ${PLACEHOLDER}' } }, (res) => { let b=''; res.on('data', c => b += c); res.on('end', () => console.log(res.statusCode, b)); }).on('error', (e) => console.log('error', e.code || e.message));`, env());
    expect(r.killed).toBe(false);
    expect(leaksIn(r.stdout, h.canary)).toEqual([]);
    for (const q of h.upstream.requests.slice(before)) expect(JSON.stringify(q.headers)).not.toContain(h.canary);
  });
});
