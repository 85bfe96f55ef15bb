import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { gunzipSync, gzipSync } from 'node:zlib';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../helpers/clients.js';
import { h2Request, h2Via } from '../helpers/h2-client.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { respondHeader, type RespondSpec } from '../helpers/upstream.js';
import { clientFrame, parseFrames, rawWs, wsOn } from '../helpers/ws-frames.js';
import { grpcFrame } from '../helpers/h2-frames.js';
import { rssBytes } from '../helpers/process-memory.js';

// Second round of attacks on the WebSocket bridge, the HTTP/2 agent side and gRPC, aimed at the fixes of the
// first review (tests in protocol-attacks.test.ts) and at what it did not cover. Every test asserts the SAFE
// behaviour: a failing test is a finding.

const WSM_PH = 'wsm-PLACEHOLDER-0123456789abcdef';
const WSM_SECRET = `wsm-real-${randomBytes(12).toString('hex')}`;

const HONEY_PH = 'honey-PLACEHOLDER-0123456789abcdef';
const SECRETS = `
  HONEY:
    placeholder: "${HONEY_PH}"
    inject: { header: X-Api-Key, format: "{HONEY}" }
    honeytoken: true
    bindings:
      - { host: decoy.example.test }
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: ws.example.test }
      - { host: h2.example.test }
      - { host: api.example.test }
  WSM:
    placeholder: "${WSM_PH}"
    inject: { type: websocket_message }
    bindings:
      - { host: ws.example.test, paths: ["/ws/**"] }
`;

// ---------------------------------------------------------------------------------------------------------------
// Hostile upstreams (bound, echoing what keyswap sent them).

interface WsUp { port: number; seen: { path: string; headers: IncomingMessage['headers']; messages: string[] }[]; close(): Promise<void> }

async function startWsUp(cert: { certPem: string; keyPem: string }): Promise<WsUp> {
  const seen: WsUp['seen'] = [];
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const auth = String(req.headers.authorization ?? '');
    wss.handleUpgrade(req, socket, head, (ws: WsSocket) => {
      const rec = { path: url.pathname, headers: req.headers, messages: [] as string[] };
      seen.push(rec);
      ws.on('error', () => ws.terminate());
      ws.on('message', (data: Buffer) => {
        rec.messages.push(data.toString());
        if (url.pathname === '/ws/echo') ws.send(data);
      });
      ws.on('close', (_code: number, reason: Buffer) => rec.messages.push(`close:${reason.toString()}`));
      const half = Math.floor(auth.length / 2);
      if (url.pathname === '/ws/split-close') {
        // The first half in a message, the rest in the close frame's reason.
        ws.send(auth.slice(0, half));
        setTimeout(() => ws.close(4000, auth.slice(half)), 50);
      }
      if (url.pathname === '/ws/split-tiny') {
        // A byte stream cut into 3-byte messages (a terminal echoing keystrokes).
        for (let i = 0; i < auth.length; i += 3) ws.send(auth.slice(i, i + 3));
        ws.send('done');
      }
      if (url.pathname === '/ws/split-mixed') {
        // Pieces alternating text and binary messages.
        let k = 0;
        for (let i = 0; i < auth.length; i += 5) ws.send(Buffer.from(auth.slice(i, i + 5)), { binary: k++ % 2 === 1 });
        ws.send('done');
      }
      if (url.pathname === '/ws/big') {
        const mb = Number(url.searchParams.get('mb') ?? '1');
        for (let i = 0; i < mb; i++) ws.send(Buffer.alloc(1024 * 1024, 0x61), { binary: true });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** gRPC framing: flag byte, 4-byte length, message. */

/** What a gRPC client makes of a body: each message, decompressed when flagged and grpc-encoding says gzip. */
function grpcMessages(body: Buffer, encoding: string | undefined): string[] {
  const out: string[] = [];
  let i = 0;
  while (i + 5 <= body.length) {
    const len = body.readUInt32BE(i + 1);
    const msg = body.subarray(i + 5, i + 5 + len);
    out.push((body[i] === 1 && encoding === 'gzip' ? gunzipSync(msg) : msg).toString('latin1'));
    i += 5 + len;
  }
  return out;
}

interface H2Up { port: number; requests: { path: string; headers: http2.IncomingHttpHeaders }[]; close(): Promise<void> }

async function startH2Up(cert: { certPem: string; keyPem: string }): Promise<H2Up> {
  const requests: H2Up['requests'] = [];
  const server = http2.createSecureServer({ cert: cert.certPem, key: cert.keyPem });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    requests.push({ path: String(headers[':path']), headers });
    stream.resume();
    stream.on('end', () => {
      const auth = String(headers.authorization ?? '');
      const url = new URL(String(headers[':path']), 'https://x');
      if (url.pathname === '/grpc-ctype') {
        // A gRPC server that compresses although asked not to, and labels the response as something other than
        // gRPC (or not at all): grpc-js never looks at the response content-type.
        const ct = url.searchParams.get('ct');
        stream.respond({ ':status': 200, ...(ct === null ? {} : { 'content-type': ct }), 'grpc-encoding': 'gzip' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(grpcFrame(gzipSync(Buffer.from(`you sent ${auth}`)), true));
        return;
      }
      if (url.pathname === '/grpc-split') {
        // A server-streaming call whose payload (a log, a terminal) is cut across two messages.
        const half = Math.floor(auth.length / 2);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.write(grpcFrame(Buffer.from(auth.slice(0, half)), false));
        setTimeout(() => stream.end(grpcFrame(Buffer.from(auth.slice(half)), false)), 30);
        return;
      }
      if (url.pathname === '/grpc-split-trailer') {
        // An error whose message ends what the last message began: the second half in grpc-message.
        const half = Math.floor(auth.length / 2);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '3', 'grpc-message': auth.slice(half) }));
        stream.end(grpcFrame(Buffer.from(auth.slice(0, half)), false));
        return;
      }
      if (url.pathname === '/early-hints') {
        stream.additionalHeaders({ ':status': 103, link: `</s.css>; rel=preload; x="${auth}"`, 'x-echo-auth': auth });
        setTimeout(() => {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          stream.end('ok');
        }, 30);
        return;
      }
      if (url.pathname === '/big') {
        const mb = Number(url.searchParams.get('mb') ?? '1');
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(1024 * 1024, 0x61);
        let sent = 0;
        const pump = (): void => {
          while (sent < mb) {
            sent++;
            if (!stream.write(chunk)) { stream.once('drain', pump); return; }
          }
          stream.end();
        };
        pump();
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ path: headers[':path'] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise<void>((r) => { server.close(() => r()); setTimeout(r, 1000).unref(); }),
  };
}

// ---------------------------------------------------------------------------------------------------------------






/** Everything the agent could read out of the frames it got: data payloads joined, and close reasons. */
function agentView(buf: Buffer): string {
  return parseFrames(buf).map((f) => (f.opcode === 8 ? f.payload.subarray(2) : f.opcode <= 2 ? f.payload : Buffer.alloc(0)).toString('latin1')).join('');
}


let h: Harness;
let testCa: TestCa;
let wsUp: WsUp;
let h2Up: H2Up;

beforeAll(async () => {
  testCa = createTestCa();
  const cert = testCa.issue(['ws.example.test', 'h2.example.test']);
  wsUp = await startWsUp(cert);
  h2Up = await startH2Up(cert);
  h = await startHarness({
    testCa,
    secrets: SECRETS,
    secretValues: { WSM: WSM_SECRET },
    resolve: { 'ws.example.test:443': `127.0.0.1:${wsUp.port}`, 'h2.example.test:443': `127.0.0.1:${h2Up.port}` },
  });
});
afterAll(async () => {
  await h?.close();
  await wsUp?.close();
  await h2Up?.close();
});

async function stillServesH2(): Promise<void> {
  const s = await h2Via(h, 'h2.example.test');
  const r = await h2Request(s, { ':path': '/v1/echo', authorization: `Bearer ${PLACEHOLDER}` });
  expect(r.status).toBe(200);
  s.close();
}

/** One h2 request, the raw body and the response head. */
function h2Raw(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ body: Buffer; rst: number; headers: http2.IncomingHttpHeaders; info: http2.IncomingHttpHeaders[] }> {
  return new Promise((resolve) => {
    const st = s.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    const info: http2.IncomingHttpHeaders[] = [];
    let head: http2.IncomingHttpHeaders = {};
    st.on('headers', (hd) => info.push(hd));
    st.on('response', (hd) => { head = hd; });
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('error', () => {});
    st.on('close', () => resolve({ body: Buffer.concat(chunks), rst: st.rstCode ?? 0, headers: head, info }));
    if (body !== undefined) st.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe('gRPC: the fixes of row 103 and row 98', () => {
  for (const ct of ['application/octet-stream', 'text/plain', null]) {
    it(`grpc-ctype-switch: a gzip-compressed gRPC message labelled content-type ${ct ?? '(none)'} does not reach the agent`, async () => {
      const s = await h2Via(h, 'h2.example.test');
      const q = ct === null ? '' : `?ct=${encodeURIComponent(ct)}`;
      const r = await h2Raw(s, { ':method': 'POST', ':path': `/grpc-ctype${q}`, 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${PLACEHOLDER}` }, grpcFrame(Buffer.from('hi'), false));
      s.close();
      expect(h2Up.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
      // What grpc-js does with it: it reads grpc-encoding and decompresses; it never checks the content-type.
      const messages = r.body.length > 0 ? grpcMessages(r.body, String(r.headers['grpc-encoding'] ?? '')) : [];
      expect(messages.join('')).not.toContain(h.canary);
    });
  }

  it('grpc-split-echo: an echo cut across two gRPC messages of a stream does not reach the agent whole', async () => {
    const s = await h2Via(h, 'h2.example.test');
    const r = await h2Raw(s, { ':method': 'POST', ':path': '/grpc-split', 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${PLACEHOLDER}` }, grpcFrame(Buffer.from('hi'), false));
    s.close();
    const messages = grpcMessages(r.body, undefined);
    // A streaming client joins the messages of a byte stream as a WebSocket agent joins messages (row 102).
    expect(messages.join('')).not.toContain(h.canary);
  });
});

describe('gRPC: an echo cut between the last message and the trailers (issue #32 review)', () => {
  it('grpc-split-trailer: the agent cannot join the last message and grpc-message into the value', async () => {
    const s = await h2Via(h, 'h2.example.test');
    let trailers: http2.IncomingHttpHeaders = {};
    const r = await new Promise<{ body: Buffer }>((resolve) => {
      const st = s.request({ ':method': 'POST', ':path': '/grpc-split-trailer', 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${PLACEHOLDER}` });
      const chunks: Buffer[] = [];
      st.on('trailers', (t) => { trailers = t; });
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('error', () => {});
      st.on('close', () => resolve({ body: Buffer.concat(chunks) }));
      st.end(grpcFrame(Buffer.from('hi'), false));
    });
    s.close();
    expect(grpcMessages(r.body, undefined).join('') + String(trailers['grpc-message'] ?? '')).not.toContain(h.canary);
  });
});

describe('WebSocket: the split-echo fix of row 102', () => {
  it('ws-split-close: an echo cut between the last message and the close reason does not reach the agent whole', async () => {
    const ws = await rawWs(h, '/ws/split-close', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor(() => parseFrames(ws.rest()).some((f) => f.opcode === 8) || ws.socket.destroyed, 3000);
    expect(agentView(ws.rest())).not.toContain(h.canary);
    ws.socket.destroy();
  });

  it('holds: an echo cut into many 3-byte messages does not reach the agent whole', async () => {
    const ws = await rawWs(h, '/ws/split-tiny', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor(() => parseFrames(ws.rest()).some((f) => f.opcode === 8 || f.payload.toString() === 'done'), 3000);
    expect(agentView(ws.rest())).not.toContain(h.canary);
    ws.socket.destroy();
  });

  it('holds: an echo cut into pieces alternating text and binary messages does not reach the agent whole', async () => {
    const ws = await rawWs(h, '/ws/split-mixed', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor(() => parseFrames(ws.rest()).some((f) => f.opcode === 8 || f.payload.toString() === 'done'), 3000);
    expect(agentView(ws.rest())).not.toContain(h.canary);
    ws.socket.destroy();
  });

  it('holds: an agent offering permessage-deflate gets no extension, and a compressed (RSV1) frame is refused, not substituted', async () => {
    const ws = await rawWs(h, '/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    expect(ws.head.toLowerCase()).not.toContain('sec-websocket-extensions');
    const rec = wsUp.seen.at(-1);
    const f = clientFrame(1, Buffer.from(`x=${WSM_PH}`));
    f[0] = (f[0] ?? 0) | 0x40; // RSV1
    ws.socket.write(f);
    await waitFor(() => parseFrames(ws.rest()).some((x) => x.opcode === 8) || ws.socket.destroyed, 2000);
    expect(rec?.messages.join('')).not.toContain(WSM_SECRET);
    ws.socket.destroy();
  });
});

describe('WebSocket: honeytokens (row 104)', () => {
  it('ws-honeytoken-close: a honeytoken placeholder sent in the agent close reason reaches the upstream only with a durable honeytoken_triggered event', async () => {
    const ws = await rawWs(h, '/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    const rec = wsUp.seen.at(-1);
    const reason = Buffer.from(`key=${HONEY_PH}`);
    ws.socket.write(clientFrame(8, Buffer.concat([Buffer.from([0x0f, 0xa0]), reason])));
    await waitFor(() => (rec?.messages.some((m) => m.startsWith('close:')) ?? false), 3000);
    const forwarded = rec?.messages.find((m) => m.startsWith('close:')) ?? '';
    if (forwarded.includes(HONEY_PH)) {
      expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'honeytoken_triggered' && e.secret_name === 'HONEY'), 2000)).toBe(true);
    }
    ws.socket.destroy();
  });
});

describe('HTTP/2 agent, HTTP/1.1 or HTTP/2 upstream: heads that do not translate', () => {
  it('holds: a 103 Early Hints carrying the secret (h2 upstream) never reaches the agent', async () => {
    const s = await h2Via(h, 'h2.example.test');
    const r = await h2Raw(s, { ':path': '/early-hints', authorization: `Bearer ${PLACEHOLDER}` });
    s.close();
    expect(JSON.stringify(r.info)).not.toContain(h.canary);
    expect(JSON.stringify(r.headers)).not.toContain(h.canary);
  });

  it('holds: HTTP/1.1 upstream heads invalid for h2 (status 999, upper-case names, connection-listed names, 204/304 and HEAD with a length) neither crash keyswap nor leak', async () => {
    const specs: RespondSpec[] = [
      { status: 999, headers: { 'x-a': 'b' }, chunks: [Buffer.from('body').toString('base64')] },
      { status: 200, headers: { 'Content-Type': 'text/plain', 'X-Upper': 'Y' }, chunks: [] },
      { status: 200, headers: { Connection: 'x-secret-hdr', 'X-Secret-Hdr': 'leak', 'Keep-Alive': 'timeout=5', 'Proxy-Connection': 'keep-alive' }, chunks: [] },
      { status: 204, headers: { 'Content-Length': '10' }, chunks: [] },
      { status: 304, headers: { 'Content-Length': '10', ETag: '"x"' }, chunks: [] },
    ];
    const s = await h2Via(h, 'api.example.test');
    for (const spec of specs) {
      const r = await h2Request(s, { ':path': '/v1/respond', authorization: `Bearer ${PLACEHOLDER}`, 'x-respond': respondHeader(spec) });
      expect(JSON.stringify(r)).not.toContain(h.canary);
    }
    // HEAD whose answer declares a length it does not carry.
    const t = await h2Request(s, { ':method': 'HEAD', ':path': '/v1/respond', authorization: `Bearer ${PLACEHOLDER}`, 'x-respond': respondHeader({ status: 200, headers: { 'Content-Length': '5' } }) });
    expect(JSON.stringify(t)).not.toContain(h.canary);
    s.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(h.child.exitCode).toBeNull();
    await stillServesH2();
  });

  it('holds: an agent with a zero flow-control window does not make keyswap buffer a 256 MiB upstream response', async () => {
    const pid = h.child.pid as number;
    const before = rssBytes(pid) / 1048576;
    const socket = await rawTlsVia(h, 'h2.example.test', 443, { ALPNProtocols: ['h2'] });
    const s = http2.connect('https://h2.example.test', { createConnection: () => socket, settings: { initialWindowSize: 0 } });
    s.on('error', () => {});
    const st = s.request({ ':path': '/big?mb=256', authorization: `Bearer ${PLACEHOLDER}` });
    st.on('error', () => {});
    st.pause();
    await new Promise((r) => setTimeout(r, 3000));
    expect(h2Up.requests.at(-1)?.path).toBe('/big?mb=256');
    const peak = rssBytes(pid) / 1048576;
    st.close(http2.constants.NGHTTP2_CANCEL);
    s.destroy();
    expect(peak - before).toBeLessThan(96);
  });
});

describe('WebSocket resource limits', () => {
  it('ws-memory: 24 agents each holding an unfinished 16 MiB message do not make keyswap hold 384 MiB', async () => {
    const pid = h.child.pid as number;
    const before = rssBytes(pid) / 1048576;
    const sockets: tls.TLSSocket[] = [];
    const size = 16 * 1024 * 1024 - 16;
    const payload = randomBytes(size - 1);
    for (let i = 0; i < 24; i++) {
      const ws = await rawWs(h, '/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
      expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
      // A single frame declaring `size` bytes, of which all but the last are sent: ws holds them until it ends.
      ws.socket.write(clientFrame(2, payload, true, size));
      sockets.push(ws.socket);
    }
    await new Promise((r) => setTimeout(r, 3000));
    const peak = rssBytes(pid) / 1048576;
    for (const s of sockets) s.destroy();
    expect(h.child.exitCode).toBeNull();
    expect(peak - before, `keyswap RSS grew from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB`).toBeLessThan(256);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------------------------

describe('reload and revocation on an open WebSocket', () => {
  const TOKEN = 'ks_token-for-agent-a-0123456789';
  const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
  let hc: Harness;
  beforeAll(async () => {
    hc = await startHarness({
      testCa,
      secrets: SECRETS,
      secretValues: { WSM: WSM_SECRET },
      resolve: { 'ws.example.test:443': `127.0.0.1:${wsUp.port}`, 'h2.example.test:443': `127.0.0.1:${h2Up.port}` },
      top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY, WSM] }\n  agent-b: { token_sha256: "${sha('ks_other-token-0123456789')}", secrets: [TEST_API_KEY] }`,
    });
  });
  afterAll(async () => {
    await hc?.close();
  });

  async function tlsAsAgentA(host: string, alpn: string[] = ['http/1.1']): Promise<tls.TLSSocket> {
    const raw = net.connect(hc.proxyPort, '127.0.0.1');
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: Basic ${Buffer.from(`agent-a:${TOKEN}`).toString('base64')}\r\n\r\n`);
    await new Promise<void>((resolve) => raw.once('data', () => resolve()));
    const socket = tls.connect({ socket: raw, servername: host, ca: hc.caPem, ALPNProtocols: alpn });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    return socket;
  }

  it('ws-revoked-client: a client removed by a reload stops getting websocket_message substitutions on the WebSocket it opened before', async () => {
    const ws = await wsOn(await tlsAsAgentA('ws.example.test'), '/ws/echo', 'ws.example.test', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    const rec = wsUp.seen.at(-1);
    ws.socket.write(clientFrame(1, Buffer.from(`before=${WSM_PH}`)));
    await waitFor(() => (rec?.messages.length ?? 0) >= 1, 3000);
    expect(rec?.messages[0]).toBe(`before=${WSM_SECRET}`);

    const configPath = path.join(hc.dir, 'keyswap.yaml');
    const reloads = hc.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length;
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(/\n {2}agent-a: [^\n]*/, ''));
    hc.child.kill('SIGHUP');
    expect(await waitFor(() => hc.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length > reloads)).toBe(true);

    // A new request on another connection of agent-a is refused now (row 57)...
    ws.socket.write(clientFrame(1, Buffer.from(`after=${WSM_PH}`)));
    await waitFor(() => (rec?.messages.length ?? 0) >= 2 || ws.socket.destroyed, 2000);
    await new Promise((r) => setTimeout(r, 200));
    // ...and the open WebSocket must not keep writing the secret for a client that no longer exists.
    expect(rec?.messages.slice(1).join('')).not.toContain(WSM_SECRET);
    ws.socket.destroy();
  });
});
