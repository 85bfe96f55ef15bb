import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { gunzipSync, gzipSync } from 'node:zlib';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia, exchange, rawTlsVia } from '../helpers/clients.js';
import { h2Request, h2Via } from '../helpers/h2-client.js';
import { FLAG, frame, getBlock, grpcFrame, literal, rawH2, TYPE } from '../helpers/h2-frames.js';
import { clientFrame, handshake, parseFrames, rawWs } from '../helpers/ws-frames.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { startParentProxy, type ParentProxy } from '../helpers/parent-proxy.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';

// Attacks on the WebSocket bridge, the HTTP/2 agent side, gRPC echo handling and the parent proxy. Every test
// asserts the SAFE behaviour: a failing test is a finding.

const WSP_PH = 'wsp-PLACEHOLDER-0123456789abcdef';
const WSP_SECRET = `wspreal${randomBytes(12).toString('hex')}`; // a valid subprotocol token
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
      - { host: plain.example.test, allow_plaintext: true }
  WSP:
    placeholder: "${WSP_PH}"
    inject: { header: Sec-WebSocket-Protocol, format: "{WSP}" }
    bindings:
      - { host: ws.example.test, methods: [GET], paths: ["/ws/**"] }
  WSM:
    placeholder: "${WSM_PH}"
    inject: { type: websocket_message }
    bindings:
      - { host: ws.example.test, paths: ["/ws/**"] }
`;

// ---------------------------------------------------------------------------------------------------------------
// Upstreams under the attacker's influence (bound, echoing).

interface WsUp { port: number; seen: { path: string; headers: IncomingMessage['headers']; protocol: string; messages: string[] }[]; close(): Promise<void> }

async function startWsUp(cert: { certPem: string; keyPem: string }): Promise<WsUp> {
  const seen: WsUp['seen'] = [];
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (p) => [...p][0] ?? false });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const auth = String(req.headers.authorization ?? '');
    if (url.pathname === '/ws/hdr') wss.once('headers', (h: string[]) => h.push(`x-echo-auth: ${auth}`, `set-cookie: s=${Buffer.from(auth).toString('base64')}`));
    wss.handleUpgrade(req, socket, head, (ws: WsSocket) => {
      const rec = { path: url.pathname, headers: req.headers, protocol: ws.protocol, messages: [] as string[] };
      seen.push(rec);
      ws.on('error', () => ws.terminate());
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        rec.messages.push(data.toString());
        if (url.pathname === '/ws/echo') ws.send(data, { binary: isBinary });
        if (url.pathname === '/ws/echo-split') {
          // A byte stream cut into messages wherever (a terminal, a log tail, kubectl exec): echo in two halves.
          const half = Math.floor(data.length / 2);
          ws.send(data.subarray(0, half), { binary: isBinary });
          ws.send(data.subarray(half), { binary: isBinary });
        }
      });
      if (url.pathname === '/ws/split-auth') {
        const half = Math.floor(auth.length / 2);
        ws.send(auth.slice(0, half));
        ws.send(auth.slice(half));
      }
      if (url.pathname === '/ws/close-auth') ws.close(4000, auth);
      if (url.pathname === '/ws/ping-auth') {
        ws.ping(auth);
        setTimeout(() => ws.send('done'), 100);
      }
      if (url.pathname === '/ws/hdr') ws.send('hello');
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

interface H2Up { port: number; requests: { path: string; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }[]; close(): Promise<void> }

async function startH2Up(cert: { certPem: string; keyPem: string }): Promise<H2Up> {
  const requests: H2Up['requests'] = [];
  const server = http2.createSecureServer({ cert: cert.certPem, key: cert.keyPem });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    const rec = { path: String(headers[':path']), headers, trailers: {} as http2.IncomingHttpHeaders, body: '' };
    requests.push(rec);
    stream.on('trailers', (t) => { rec.trailers = t; });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      rec.body = Buffer.concat(chunks).toString();
      const auth = String(headers.authorization ?? '');
      const path = String(headers[':path']).split('?')[0];
      if (path === '/grpc-gzip' || path === '/grpc-plain') {
        // A standard gRPC server compresses its messages with an encoding the client accepts (grpc-accept-encoding).
        const gzip = path === '/grpc-gzip';
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...(gzip ? { 'grpc-encoding': 'gzip' } : {}) }, { waitForTrailers: true });
        const msg = Buffer.from(`you sent ${auth}`);
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(grpcFrame(gzip ? gzipSync(msg) : msg, gzip));
        return;
      }
      if (path === '/hdr') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-echo-auth': auth, 'x-b64': Buffer.from(auth).toString('base64') });
        stream.end('ok');
        return;
      }
      if (path === '/trailer-name' || path === '/hdr-name') {
        // The echo in a header NAME: scrubbing writes the placeholder there, which has upper-case letters (invalid in h2).
        const name = `x-${auth.replace(/^Bearer /, '')}`;
        if (path === '/hdr-name') {
          stream.respond({ ':status': 200, 'content-type': 'text/plain', [name]: '1' });
          stream.end('ok');
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ [name]: '1' }));
        stream.end('body');
        return;
      }
      if (path === '/trailers') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-echo-auth': auth }));
        stream.end('body');
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ path: headers[':path'], authority: headers[':authority'], method: headers[':method'] }));
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





const containsSecret = (text: string, secret: string): boolean =>
  [secret, Buffer.from(secret).toString('base64').slice(0, -4), encodeURIComponent(secret)].some((f) => text.includes(f));

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
    secretValues: { WSP: WSP_SECRET, WSM: WSM_SECRET },
    resolve: { 'ws.example.test:443': `127.0.0.1:${wsUp.port}`, 'h2.example.test:443': `127.0.0.1:${h2Up.port}` },
  });
});
afterAll(async () => {
  await h?.close();
  await wsUp?.close();
  await h2Up?.close();
});

describe('WebSocket bridge attacks', () => {
  it('ws-subprotocol-echo: a secret injected into Sec-WebSocket-Protocol is not handed back to the agent in the 101', async () => {
    const ws = await rawWs(h, '/ws/echo', `Sec-WebSocket-Protocol: ${WSP_PH}\r\n`);
    // keyswap sent the secret upstream (the binding allows it)...
    expect(wsUp.seen.at(-1)?.headers['sec-websocket-protocol']).toBe(WSP_SECRET);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    // ...and the upstream chose it: the agent must not read it back.
    expect(containsSecret(ws.head, WSP_SECRET)).toBe(false);
    ws.socket.destroy();
  });

  it('ws-split-echo: an echo cut across two upstream messages does not reach the agent whole', async () => {
    const ws = await rawWs(h, '/ws/split-auth', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor(() => parseFrames(ws.rest()).length >= 2, 3000);
    const joined = parseFrames(ws.rest()).filter((f) => f.opcode === 1 || f.opcode === 0).map((f) => f.payload.toString('latin1')).join('');
    expect(joined).not.toContain(h.canary);
    ws.socket.destroy();
  });

  it('ws-split-echo (message site): a substituted message echoed back in two halves does not reach the agent whole', async () => {
    const ws = await rawWs(h, '/ws/echo-split', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    ws.socket.write(clientFrame(1, Buffer.from(`token=${WSM_PH}`)));
    await waitFor(() => parseFrames(ws.rest()).length >= 2, 3000);
    expect(wsUp.seen.at(-1)?.messages[0]).toBe(`token=${WSM_SECRET}`);
    const joined = parseFrames(ws.rest()).map((f) => f.payload.toString('latin1')).join('');
    expect(joined).not.toContain(WSM_SECRET);
    ws.socket.destroy();
  });

  it('holds: 101 extra headers echoing the secret (raw and base64) are scrubbed', async () => {
    const ws = await rawWs(h, '/ws/hdr', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    expect(ws.head.toLowerCase()).toContain('x-echo-auth');
    expect(containsSecret(ws.head, h.canary)).toBe(false);
    ws.socket.destroy();
  });

  it('holds: an upstream close reason echoing the secret is scrubbed', async () => {
    const ws = await rawWs(h, '/ws/close-auth', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    await waitFor(() => parseFrames(ws.rest()).some((f) => f.opcode === 8), 3000);
    const close = parseFrames(ws.rest()).find((f) => f.opcode === 8);
    expect(close).toBeDefined();
    expect(close?.payload.toString('latin1')).not.toContain(h.canary);
    ws.socket.destroy();
  });

  it('holds: an upstream ping carrying the secret never reaches the agent', async () => {
    const ws = await rawWs(h, '/ws/ping-auth', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    await waitFor(() => parseFrames(ws.rest()).some((f) => f.opcode === 1), 3000);
    expect(ws.rest().toString('latin1')).not.toContain(h.canary);
    ws.socket.destroy();
  });

  it('holds: a placeholder in a binary message, or fragmented across frames of one text message, is substituted only as a whole text message', async () => {
    const ws = await rawWs(h, '/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    const before = wsUp.seen.at(-1);
    ws.socket.write(clientFrame(2, Buffer.from(`bin ${WSM_PH}`)));
    const half = Math.floor(WSM_PH.length / 2);
    ws.socket.write(Buffer.concat([clientFrame(1, Buffer.from(`frag ${WSM_PH.slice(0, half)}`), false), clientFrame(0, Buffer.from(WSM_PH.slice(half)), true)]));
    await waitFor(() => (before?.messages.length ?? 0) >= 2, 3000);
    expect(before?.messages[0]).toBe(`bin ${WSM_PH}`);
    // A fragmented text message is reassembled: substituting there is fine (it is the message), echo must come back scrubbed.
    expect(before?.messages[1]).toBe(`frag ${WSM_SECRET}`);
    await waitFor(() => parseFrames(ws.rest()).length >= 2, 3000);
    expect(ws.rest().toString('latin1')).not.toContain(WSM_SECRET);
    ws.socket.destroy();
  });

  it('holds: a websocket_message placeholder on a handshake path outside the binding is not substituted', async () => {
    const ws = await rawWs(h, '/other/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    ws.socket.write(clientFrame(1, Buffer.from(`t=${WSM_PH}`)));
    await waitFor(() => (wsUp.seen.at(-1)?.messages.length ?? 0) >= 1, 2000);
    expect(wsUp.seen.at(-1)?.path).toBe('/other/echo');
    expect(wsUp.seen.at(-1)?.messages.join('')).not.toContain(WSM_SECRET);
    ws.socket.destroy();
  });

  it('ws-honeytoken-unseen: a honeytoken placeholder sent in a WebSocket message adds a durable honeytoken_triggered event', async () => {
    const ws = await rawWs(h, '/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    ws.socket.write(clientFrame(1, Buffer.from(`key=${HONEY_PH}`)));
    await waitFor(() => (wsUp.seen.at(-1)?.messages.length ?? 0) >= 1, 3000);
    expect(wsUp.seen.at(-1)?.messages[0]).toBe(`key=${HONEY_PH}`);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'honeytoken_triggered' && e.secret_name === 'HONEY'), 2000)).toBe(true);
    ws.socket.destroy();
  });

  it('holds: an invalid or duplicated subprotocol list neither crashes keyswap nor leaves it hanging', async () => {
    for (const list of ['a b', 'x, x', ',,,', 'v1, ' + WSP_PH + ', ' + WSP_PH]) {
      const t = await rawTlsVia(h, 'ws.example.test');
      const answer = await exchange(t, handshake('/ws/echo', 'ws.example.test', `Sec-WebSocket-Protocol: ${list}\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n`), 1500);
      expect(answer).not.toContain(h.canary);
      expect(answer).not.toContain(WSP_SECRET);
    }
    expect(h.child.exitCode).toBeNull();
    const ws = await rawWs(h, '/ws/echo', `Authorization: Bearer ${PLACEHOLDER}\r\n`);
    expect(ws.head).toMatch(/^HTTP\/1\.1 101 /);
    ws.socket.destroy();
  });

  it('holds: an Upgrade other than websocket (h2c) is refused, nothing dialled', async () => {
    const before = wsUp.seen.length;
    const t = await rawTlsVia(h, 'ws.example.test');
    const answer = await exchange(t, `GET /ws/echo HTTP/1.1\r\nHost: ws.example.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`, 2000);
    expect(answer).not.toMatch(/^HTTP\/1\.1 101/);
    expect(wsUp.seen.length).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------------------------


async function stillServesH2(): Promise<void> {
  const s = await h2Via(h, 'h2.example.test');
  const r = await h2Request(s, { ':path': '/v1/echo', authorization: `Bearer ${PLACEHOLDER}` });
  expect(r.status).toBe(200);
  s.close();
}

describe('HTTP/2 agent-side attacks', () => {
  it('grpc-gzip-echo: an echo inside a gzip-compressed gRPC message (grpc-encoding: gzip) does not reach the agent', async () => {
    const s = await h2Via(h, 'h2.example.test');
    const r = await new Promise<{ body: Buffer; rst: number; headers: http2.IncomingHttpHeaders }>((resolve) => {
      const st = s.request({ ':method': 'POST', ':path': '/grpc-gzip', 'content-type': 'application/grpc', te: 'trailers', 'grpc-accept-encoding': 'gzip', authorization: `Bearer ${PLACEHOLDER}` });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      st.on('response', (hd) => { headers = hd; });
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('error', () => {});
      st.on('close', () => resolve({ body: Buffer.concat(chunks), rst: st.rstCode ?? 0, headers }));
      st.end(grpcFrame(Buffer.from('hi'), false));
    });
    s.close();
    expect(h2Up.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    let plain = r.body.toString('latin1');
    if (r.body.length > 5 && r.body[0] === 1) plain = gunzipSync(r.body.subarray(5, 5 + r.body.readUInt32BE(1))).toString('latin1');
    expect(plain).not.toContain(h.canary);
  });

  it('holds: an uncompressed gRPC echo is blocked (stream reset), never redacted', async () => {
    const s = await h2Via(h, 'h2.example.test');
    const r = await new Promise<{ body: Buffer; rst: number }>((resolve) => {
      const st = s.request({ ':method': 'POST', ':path': '/grpc-plain', 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${PLACEHOLDER}` });
      const chunks: Buffer[] = [];
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('error', () => {});
      st.on('close', () => resolve({ body: Buffer.concat(chunks), rst: st.rstCode ?? 0 }));
      st.end(grpcFrame(Buffer.from('hi'), false));
    });
    s.close();
    expect(r.body.toString('latin1')).not.toContain(h.canary);
  });

  it('holds: response headers and trailers echoing the secret over h2 are scrubbed', async () => {
    const s = await h2Via(h, 'h2.example.test');
    const a = await h2Request(s, { ':path': '/hdr', authorization: `Bearer ${PLACEHOLDER}` });
    const b = await h2Request(s, { ':path': '/trailers', authorization: `Bearer ${PLACEHOLDER}`, te: 'trailers' });
    s.close();
    expect(JSON.stringify(a.headers)).not.toContain(h.canary);
    expect(JSON.stringify(a.headers)).not.toContain(Buffer.from(`Bearer ${h.canary}`).toString('base64').slice(0, 20));
    expect(JSON.stringify(b.trailers ?? {})).not.toContain(h.canary);
  });

  it('holds: an echo in a response header NAME or trailer NAME (scrubbed to a mixed-case placeholder) neither leaks nor crashes keyswap', async () => {
    const s = await h2Via(h, 'h2.example.test');
    const a = await h2Request(s, { ':path': '/hdr-name', authorization: `Bearer ${PLACEHOLDER}` });
    const b = await h2Request(s, { ':path': '/trailer-name', authorization: `Bearer ${PLACEHOLDER}`, te: 'trailers' });
    s.close();
    expect(JSON.stringify(a)).not.toContain(h.canary);
    expect(JSON.stringify(b)).not.toContain(h.canary);
    await new Promise((r) => setTimeout(r, 200));
    expect(h.child.exitCode).toBeNull();
    await stillServesH2();
  });

  it('holds: request trailers carrying a placeholder are never turned into the secret upstream', async () => {
    const s = await h2Via(h, 'h2.example.test');
    await new Promise<void>((resolve) => {
      const st = s.request({ ':method': 'POST', ':path': '/v1/echo', authorization: `Bearer ${PLACEHOLDER}`, 'content-type': 'text/plain' }, { waitForTrailers: true });
      st.on('wantTrailers', () => st.sendTrailers({ authorization: `Bearer ${PLACEHOLDER}`, 'x-api-key': PLACEHOLDER }));
      st.on('error', () => {});
      st.on('close', () => resolve());
      st.resume();
      st.end('body');
    });
    s.close();
    const last = h2Up.requests.at(-1);
    expect(JSON.stringify(last?.trailers ?? {})).not.toContain(h.canary);
    // (Observed: request trailers are not forwarded upstream at all, so nothing in them can be injected or leak.)
    expect(last?.trailers ?? {}).toEqual({});
  });

  it('holds: CONNECT over an h2 stream (to another authority) is never forwarded or tunnelled', async () => {
    const before = h2Up.requests.length;
    const { socket, frames } = await rawH2(h, 'h2.example.test');
    const block = Buffer.concat([literal(':method', 'CONNECT'), literal(':authority', 'evil.example.test:443'), literal('authorization', `Bearer ${PLACEHOLDER}`)]);
    socket.write(frame(TYPE.HEADERS, FLAG.END_HEADERS, 1, block));
    await waitFor(() => frames.some((f) => f.stream === 1 && (f.type === TYPE.HEADERS || f.type === TYPE.RST_STREAM)) || socket.destroyed, 3000);
    socket.write(frame(TYPE.DATA, 0, 1, Buffer.from('GET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n')));
    await new Promise((r) => setTimeout(r, 300));
    expect(h2Up.requests.length).toBe(before);
    const head = frames.find((f) => f.stream === 1 && f.type === TYPE.HEADERS);
    // If keyswap answered, it must not be a 2xx tunnel.
    if (head !== undefined) expect(head.payload[0]).not.toBe(0x88); // 0x88 = indexed :status 200
    socket.destroy();
    await stillServesH2();
  });

  it('holds: extended CONNECT (:protocol websocket, RFC 8441) is refused, nothing forwarded', async () => {
    const before = h2Up.requests.length;
    const { socket } = await rawH2(h, 'h2.example.test');
    const block = Buffer.concat([literal(':method', 'CONNECT'), literal(':protocol', 'websocket'), literal(':scheme', 'https'), literal(':path', '/ws/echo'), literal(':authority', 'h2.example.test'), literal('authorization', `Bearer ${PLACEHOLDER}`)]);
    socket.write(frame(TYPE.HEADERS, FLAG.END_HEADERS, 1, block));
    await new Promise((r) => setTimeout(r, 400));
    expect(h2Up.requests.length).toBe(before);
    socket.destroy();
    await stillServesH2();
  });

  it('holds: :path of *, an absolute URI, or a path without / is refused, and :authority of another host is 421', async () => {
    const before = h2Up.requests.length;
    const { socket, frames } = await rawH2(h, 'h2.example.test');
    const req = (id: number, path: string, authority: string): Buffer => frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, Buffer.concat([getBlock(authority, path), literal('authorization', `Bearer ${PLACEHOLDER}`)]));
    socket.write(Buffer.concat([
      req(1, '*', 'h2.example.test'),
      req(3, 'https://evil.example.test/v1/echo', 'h2.example.test'),
      req(5, 'v1/echo', 'h2.example.test'),
      req(7, '/v1/echo', 'evil.example.test'),
      req(9, '/v1/echo', 'h2.example.test:443@evil.example.test'),
    ]));
    await waitFor(() => [1, 3, 5, 7, 9].every((id) => frames.some((f) => f.stream === id && (f.type === TYPE.HEADERS || f.type === TYPE.RST_STREAM))) || socket.destroyed, 3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(h2Up.requests.length).toBe(before);
    socket.destroy();
  });

  it('holds: a host header without :authority naming another host is 421', async () => {
    const before = h2Up.requests.length;
    const { socket, frames } = await rawH2(h, 'h2.example.test');
    const block = Buffer.concat([literal(':method', 'GET'), literal(':scheme', 'https'), literal(':path', '/v1/echo'), literal('host', 'evil.example.test'), literal('authorization', `Bearer ${PLACEHOLDER}`)]);
    socket.write(frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block));
    await waitFor(() => frames.some((f) => f.stream === 1 && (f.type === TYPE.HEADERS || f.type === TYPE.RST_STREAM)), 3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(h2Up.requests.length).toBe(before);
    socket.destroy();
  });

  it('holds: connection-specific headers (upgrade, te: gzip, transfer-encoding) on an h2 request are refused, not forwarded', async () => {
    const before = h2Up.requests.length;
    const { socket } = await rawH2(h, 'h2.example.test');
    const bad = [literal('upgrade', 'websocket'), literal('te', 'gzip'), literal('transfer-encoding', 'chunked'), literal('connection', 'keep-alive')];
    bad.forEach((b, i) => socket.write(frame(TYPE.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, Buffer.concat([getBlock('h2.example.test', '/v1/echo'), b, literal('authorization', `Bearer ${PLACEHOLDER}`)]))));
    await new Promise((r) => setTimeout(r, 500));
    expect(h2Up.requests.length).toBe(before);
    socket.destroy();
    await stillServesH2();
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('parent proxy attacks', () => {
  let hp: Harness;
  let parent: ParentProxy;
  const relayed = (): string => parent.seen.map((s) => `${s.up.toString('latin1')}${s.down.toString('latin1')}`).join('');
  beforeAll(async () => {
    parent = await startParentProxy({ credentials: 'corp:pw-0123456789', resolve: () => hp.resolved });
    hp = await startHarness({
      testCa,
      secrets: SECRETS,
      secretValues: { WSP: WSP_SECRET, WSM: WSM_SECRET, CORP: 'corp:pw-0123456789' },
      resolve: { 'ws.example.test:443': `127.0.0.1:${wsUp.port}`, 'h2.example.test:443': `127.0.0.1:${h2Up.port}` },
      upstreamLines: `  proxy: ${parent.url}\n  proxy_credentials: CORP`,
    });
  });
  afterAll(async () => {
    await hp?.close();
    await parent?.close();
  });

  it('holds: a WebSocket and an h2 session through the parent carry the secret inside TLS only', async () => {
    const t = await rawTlsVia(hp, 'ws.example.test');
    const head = await exchange(t, handshake('/ws/echo', 'ws.example.test', `Authorization: Bearer ${PLACEHOLDER}\r\n`), 1500);
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    const s = await h2Via(hp, 'h2.example.test');
    const r = await h2Request(s, { ':path': '/v1/echo', authorization: `Bearer ${PLACEHOLDER}` });
    s.close();
    expect(r.status).toBe(200);
    expect(h2Up.requests.at(-1)?.headers.authorization).toBe(`Bearer ${hp.canary}`);
    expect(relayed().includes(hp.canary), "parent relayed bytes contain the secret").toBe(false);
  });

  it('parent-plaintext: an allow_plaintext binding through the parent proxy is refused (403), so the parent never reads the secret', async () => {
    const before = hp.plainUpstream.requests.length;
    const r = await curlVia(hp, 'http://plain.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status).toBe(403);
    expect(r.body).toContain('never sent over plain http through the parent proxy');
    expect(hp.plainUpstream.requests.length).toBe(before);
    expect(relayed().includes(hp.canary), "parent relayed bytes contain the secret").toBe(false);
  });
});
