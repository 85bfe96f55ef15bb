import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ProxyAgent, WebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { rssBytes } from '../helpers/process-memory.js';
import { exchange, rawTlsVia } from '../helpers/clients.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { startWsUpstream, type WsUpstream } from '../helpers/ws-upstream.js';

// WebSockets through the MITM: the handshake goes through the pipeline like any request (binding, injection,
// durable audit, strict TLS); messages are relayed both ways, upstream ones scrubbed, agent ones substituted
// only where a websocket_message site opts in.
const MSG_PH = 'wst-PLACEHOLDER-0123456789abcdef';
const MSG_SECRET = `wst-real-${randomBytes(10).toString('hex')}`;
const BLOCK_PH = 'blk-PLACEHOLDER-0123456789abcdef';
const BLOCK_SECRET = `blk-real-${randomBytes(10).toString('hex')}`;
const MISSING_PH = 'missing-PLACEHOLDER-0123456789abcdef';

let h: Harness;
let up: WsUpstream;
let dispatcher: ProxyAgent;
beforeAll(async () => {
  const testCa = createTestCa();
  let auditPath = '';
  up = await startWsUpstream({ tls: testCa.issue(['rt.example.test', 'strict.example.test', 'missing.example.test']), auditPath: () => auditPath });
  h = await startHarness({
    testCa,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: rt.example.test, methods: [GET], paths: ["/ws/**"] }
  NOT_IN_BACKEND:
    placeholder: "${MISSING_PH}"
    inject: { header: X-Key, format: "{NOT_IN_BACKEND}" }
    bindings:
      - { host: missing.example.test }
  WS_TOKEN:
    placeholder: "${MSG_PH}"
    inject: { type: websocket_message }
    bindings:
      - { host: rt.example.test, paths: ["/ws/**"] }
  BLOCKED:
    placeholder: "${BLOCK_PH}"
    inject: { header: Authorization, format: "Bearer {BLOCKED}" }
    response_scrub: block
    bindings:
      - { host: strict.example.test }
`,
    secretValues: { WS_TOKEN: MSG_SECRET, BLOCKED: BLOCK_SECRET },
    resolve: { 'rt.example.test:443': `127.0.0.1:${up.port}`, 'strict.example.test:443': `127.0.0.1:${up.port}`, 'missing.example.test:443': `127.0.0.1:${up.port}` },
  });
  auditPath = h.auditPath;
  dispatcher = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } });
});
afterAll(async () => {
  await dispatcher.close();
  await h.close();
  await up.close();
});

interface Client {
  readonly ws: WebSocket;
  readonly messages: (string | Buffer)[];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

function connect(url: string, o: { headers?: Record<string, string>; protocols?: string[] } = {}): Client {
  const ws = new WebSocket(url, { dispatcher, headers: o.headers ?? {}, protocols: o.protocols ?? [] });
  ws.binaryType = 'arraybuffer';
  const messages: (string | Buffer)[] = [];
  ws.addEventListener('message', (e) => messages.push(typeof e.data === 'string' ? e.data : Buffer.from(e.data as ArrayBuffer)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('websocket failed')));
  });
  opened.catch(() => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
  return { ws, messages, opened, closed };
}

const auth = { authorization: `Bearer ${PLACEHOLDER}` };

describe('a WebSocket through keyswap', () => {
  it('the handshake carries the real secret, audited before the upstream saw it (K5); an echo of it reaches the agent as the placeholder', async () => {
    const c = connect('wss://rt.example.test/ws/echo-auth', { headers: auth });
    await c.opened;
    expect(await waitFor(() => c.messages.length > 0)).toBe(true);
    expect(c.messages[0]).toBe(`auth=Bearer ${PLACEHOLDER}`);
    const seen = up.seen.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${h.canary}`);
    // Compression was offered by the agent's client and by the upstream: keyswap negotiated none, so it reads what it scrubs.
    expect(seen?.headers['sec-websocket-extensions']).toBeUndefined();
    expect(seen?.auditAtHandshake).toMatch(/"type":"inject_decision"[^\n]*"secret_name":"TEST_API_KEY"/);
    c.ws.close(1000, 'done');
    expect((await c.closed).code).toBe(1000);
    expect(await waitFor(() => seen?.closed?.code === 1000)).toBe(true);
  });

  it('messages travel both ways in order, text and binary, byte for byte', async () => {
    const c = connect('wss://rt.example.test/ws/echo', { headers: auth });
    await c.opened;
    const binary = randomBytes(70_000);
    for (let i = 0; i < 50; i++) c.ws.send(`message ${i} ünïcödé`);
    c.ws.send(binary);
    expect(await waitFor(() => c.messages.length === 51)).toBe(true);
    expect(c.messages.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, i) => `message ${i} ünïcödé`));
    expect(Buffer.compare(c.messages[50] as Buffer, binary)).toBe(0);
    c.ws.close();
  });

  it('a websocket_message site substitutes its placeholder in agent messages, audited per message; the echo comes back as the placeholder', async () => {
    const c = connect('wss://rt.example.test/ws/echo', { headers: auth });
    await c.opened;
    const before = h.auditRecords().filter((e) => e.type === 'inject_decision' && e.secret_name === 'WS_TOKEN').length;
    c.ws.send(JSON.stringify({ type: 'session.update', token: MSG_PH }));
    expect(await waitFor(() => c.messages.length === 1)).toBe(true);
    const seen = up.seen.at(-1);
    expect(seen?.messages[0]?.data.toString()).toBe(JSON.stringify({ type: 'session.update', token: MSG_SECRET }));
    expect(c.messages[0]).toBe(JSON.stringify({ type: 'session.update', token: MSG_PH }));
    expect(h.auditRecords().filter((e) => e.type === 'inject_decision' && e.secret_name === 'WS_TOKEN').length).toBe(before + 1);
    c.ws.close();
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'response_scrubbed' && e.secret_name === 'WS_TOKEN'))).toBe(true);
  });

  it('without the opt-in, a placeholder in a message travels verbatim', async () => {
    const c = connect('wss://rt.example.test/ws/echo', { headers: auth });
    await c.opened;
    c.ws.send(`key is ${PLACEHOLDER}`);
    expect(await waitFor(() => c.messages.length === 1)).toBe(true);
    expect(up.seen.at(-1)?.messages[0]?.data.toString()).toBe(`key is ${PLACEHOLDER}`);
    c.ws.close();
  });

  it('the subprotocol the upstream chose is the one the agent gets', async () => {
    const c = connect('wss://rt.example.test/ws/echo', { headers: auth, protocols: ['chat.v1', 'chat.v2'] });
    await c.opened;
    expect(c.ws.protocol).toBe('chat.v2');
    expect(up.seen.at(-1)?.headers['sec-websocket-protocol']).toBe('chat.v1,chat.v2');
    c.ws.close();
  });

  it('the upstream\'s close code and reason reach the agent', async () => {
    const c = connect('wss://rt.example.test/ws/close-4001', { headers: auth });
    await c.opened;
    expect(await c.closed).toEqual({ code: 4001, reason: 'bye' });
  });

  it('an upstream that refuses the handshake: the agent gets its answer, scrubbed', async () => {
    const t = await rawTlsVia(h, 'rt.example.test');
    const answer = await exchange(t, `GET /ws/reject HTTP/1.1\r\nHost: rt.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toContain(`x-seen-auth: Bearer ${PLACEHOLDER}`);
    expect(answer).toContain(`no: Bearer ${PLACEHOLDER}`);
    expect(answer).not.toContain(h.canary);
  });

  it('with response_scrub: block, an echo closes the connection 1008 instead', async () => {
    const c = connect('wss://strict.example.test/ws/echo-auth', { headers: { authorization: `Bearer ${BLOCK_PH}` } });
    await c.opened;
    expect((await c.closed).code).toBe(1008);
    expect(c.messages).toEqual([]);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'response_scrubbed' && e.secret_name === 'BLOCKED' && e.action === 'blocked'))).toBe(true);
  });

  it('a message past 16 MiB closes the connection (1009), the upstream side with 1001, and keyswap keeps serving', async () => {
    const c = connect('wss://rt.example.test/ws/echo', { headers: auth });
    await c.opened;
    const seen = up.seen.at(-1);
    c.ws.send(Buffer.alloc(17 * 1024 * 1024, 0x62));
    expect((await c.closed).code).toBe(1009);
    expect(await waitFor(() => seen?.closed?.code === 1001)).toBe(true);
    expect(seen?.messages).toEqual([]);
    const d = connect('wss://rt.example.test/ws/echo', { headers: auth });
    await d.opened;
    d.ws.send('still here');
    expect(await waitFor(() => d.messages.length === 1)).toBe(true);
    d.ws.close();
  });
});

describe('the WebSocket handshake keeps every request-path rule', () => {
  const handshake = (path: string, extra: string, host = 'rt.example.test'): string =>
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${extra}\r\n`;

  it('destination rule: a Host other than the CONNECT target is refused (421), nothing dialled', async () => {
    const before = up.seen.length;
    const answer = await exchange(await rawTlsVia(h, 'rt.example.test'), handshake('/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`, 'evil.example.test'));
    expect(answer).toMatch(/^HTTP\/1\.1 421 /);
    expect(up.seen.length).toBe(before);
  });

  it('scope: a path outside the binding gets the placeholder, audited as binding_scope_violation', async () => {
    const c = connect('wss://rt.example.test/other/echo', { headers: auth });
    await c.opened;
    expect(up.seen.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    c.ws.close();
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'inject_decision' && e.reason === 'binding_scope_violation'))).toBe(true);
    expect(findCanary(h)).toEqual([]);
  });

  it.each([
    ['a dot segment', '/ws/../ws/echo'],
    ['a backslash', '/ws\\echo'],
    ['no key', null],
  ])('a handshake with %s is refused (400) before anything is dialled', async (_what, path) => {
    const before = up.seen.length;
    const raw = path === null
      ? `GET /ws/echo HTTP/1.1\r\nHost: rt.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`
      : handshake(path, `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    const answer = await exchange(await rawTlsVia(h, 'rt.example.test'), raw);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(up.seen.length).toBe(before);
  });

  it('fail closed: a secret the backend cannot give refuses the handshake (503), nothing dialled', async () => {
    const before = up.seen.length;
    const answer = await exchange(await rawTlsVia(h, 'missing.example.test'), handshake('/ws/echo', `X-Key: ${MISSING_PH}\r\n`, 'missing.example.test'));
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(up.seen.length).toBe(before);
  });

  it('backpressure: an agent that stops reading stops the upstream, and keyswap holds no more than a few MiB for it', async () => {
    const t = await rawTlsVia(h, 'rt.example.test');
    const rss = (): number => rssBytes(h.child.pid as number);
    const rssBefore = rss();
    let received = 0;
    const head = new Promise<string>((resolve) => {
      let text: string | null = '';
      const onData = (c: Buffer): void => {
        received += c.length;
        if (text === null) return;
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          t.pause();
          resolve(text.slice(0, text.indexOf('\r\n')));
          text = null;
        }
      };
      t.on('data', onData);
    });
    t.write(handshake('/ws/flood?mb=300', `Authorization: Bearer ${PLACEHOLDER}\r\n`));
    expect(await head).toMatch(/^HTTP\/1\.1 101 /);
    const seen = up.seen.at(-1);
    // Wait until the upstream stops being able to send (bounded), then look at what everything holds.
    let last = -1;
    for (let i = 0; i < 50 && seen !== undefined && seen.floodSentMb !== last; i++) {
      last = seen.floodSentMb;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(seen?.floodSentMb).toBeLessThan(100);
    expect(rss() - rssBefore).toBeLessThan(64 * 1024 * 1024);
    // Reading again lets it all through.
    t.resume();
    expect(await waitFor(() => received > 300 * 1024 * 1024, 60_000, 100)).toBe(true);
    t.destroy();
  }, 90_000);

  it('another upgrade (h2c) is refused with 501', async () => {
    const answer = await exchange(await rawTlsVia(h, 'rt.example.test'), `GET /ws/echo HTTP/1.1\r\nHost: rt.example.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 501 /);
  });

  it('keyswap explain knows a wss:// handshake: the header injected, the message site, the scrubbing; ws:// refused', () => {
    const explain = (method: string, url: string, ...hs: string[]): string =>
      cli(['explain', method, url, ...hs.flatMap((x) => ['-H', x]), '--config', path.join(h.dir, 'keyswap.yaml')], { env: { HOME: h.dir } }).stdout;
    const out = explain('GET', 'wss://rt.example.test/ws/echo', `Authorization: Bearer ${PLACEHOLDER}`);
    expect(out).toContain('TEST_API_KEY: injected at header authorization');
    expect(out).toContain('WS_TOKEN: its placeholder would be replaced in each text message the agent sends');
    expect(out).toContain('WebSocket: messages are relayed both ways');
    expect(explain('GET', 'ws://rt.example.test/ws/echo')).toContain('refused: plain ws:// upgrades are not served');
  });

  it('no secret form in any log or audit line', () => {
    for (const text of [h.stdout(), h.stderr(), h.auditText()]) {
      for (const secret of [h.canary, MSG_SECRET, BLOCK_SECRET]) expect(text).not.toContain(secret);
    }
    expect(findCanary(h)).toEqual([]);
  });
});

describe('an idle WebSocket', () => {
  it('is closed (1001) after timeouts.tunnel_idle_seconds with no message either way', async () => {
    let auditPath = '';
    const testCa = createTestCa();
    const idleUp = await startWsUpstream({ tls: testCa.issue(['rt.example.test']), auditPath: () => auditPath });
    const hi = await startHarness({ testCa, top: 'timeouts: { tunnel_idle_seconds: 1 }', resolve: { 'rt.example.test:443': `127.0.0.1:${idleUp.port}` }, secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [{ host: rt.example.test }]
` });
    auditPath = hi.auditPath;
    const agent = new ProxyAgent({ uri: hi.proxyUrl, requestTls: { ca: hi.caPem } });
    try {
      const ws = new WebSocket('wss://rt.example.test/ws/echo', { dispatcher: agent, headers: auth });
      const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
      await new Promise((resolve) => ws.addEventListener('open', resolve));
      const started = Date.now();
      expect(await closed).toBe(1001);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(await waitFor(() => idleUp.seen.at(-1)?.closed?.code === 1001)).toBe(true);
    } finally {
      await agent.close();
      await hi.close();
      await idleUp.close();
    }
  });
});
