import { createHmac } from 'node:crypto';
import net from 'node:net';
import type tls from 'node:tls';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawPlain, rawTlsVia } from '../helpers/clients.js';
import { DEFAULT_SECRETS, findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { needlesOf } from '../helpers/secret-forms.js';
import { respondHeader, type RespondSpec } from '../helpers/upstream.js';

// Issue: the no-leak promise against an adversarial agent. Each test here names one class of attack that broke
// it, talks raw HTTP through a live keyswap as a compromised agent would, and checks every byte the agent got.
const BASIC_PH = 'bs-PLACEHOLDER-BASIC-0123456789abcdef';
const BODY_PH = 'bd-PLACEHOLDER-BODY-0123456789abcdefgh';
const TRAP_PH = 'tr-PLACEHOLDER-TRAP-0123456789abcdefgh';
const BASIC_VALUE = 'basic-real-value-5f3a9c1e77d2b4';
const HMAC_PH = 'hm-PLACEHOLDER-HMAC-0123456789abcdefgh';
const HMAC_VALUE = 'hmac-real-value-77aa01c3e9d5';
const BODY_HMAC_PH = 'bh-PLACEHOLDER-BODYHMAC-0123456789abcd';
const BODY_HMAC_VALUE = 'body-hmac-real-value-31c0de';
const BODY_VALUE = 'body-real-value-0b8e2d6c19fa47';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { BASIC_KEY: BASIC_VALUE, BODY_KEY: BODY_VALUE, HMAC_KEY: HMAC_VALUE, BODY_HMAC: BODY_HMAC_VALUE, TRAP_KEY: 'never-used-trap-value' },
    top: 'timeouts: { request_head_seconds: 2, tunnel_idle_seconds: 2 }',
    secrets: `${DEFAULT_SECRETS}
  BASIC_KEY:
    placeholder: "${BASIC_PH}"
    inject: { type: basic }
    bindings: [ { host: api.example.test, paths: ["/v1/**"] } ]
  BODY_KEY:
    placeholder: "${BODY_PH}"
    inject: { type: body, format: "{BODY_KEY}" }
    bindings: [ { host: api.example.test, methods: [POST], paths: ["/v1/**"] } ]
  HMAC_KEY:
    placeholder: "${HMAC_PH}"
    inject: { header: x-hmac, template: "Token {{ hmac_sha256(HMAC_KEY, 'v1') }}" }
    compose: [HMAC_KEY]
    bindings: [ { host: api.example.test } ]
  BODY_HMAC:
    placeholder: "${BODY_HMAC_PH}"
    inject: { type: body, template: "{{ hmac_sha256(BODY_HMAC, 'v1') }}" }
    compose: [BODY_HMAC]
    bindings: [ { host: api.example.test, methods: [POST], paths: ["/v1/**"] } ]
  TRAP_KEY:
    placeholder: "${TRAP_PH}"
    honeytoken: true
    inject: { header: x-trap, format: "{TRAP_KEY}" }
    bindings: [ { host: other.example.test } ]
`,
  });
});
afterAll(async () => {
  await h.close();
});

/** Every secret value this file plants, in every form keyswap claims to scrub. */
function secretForms(): string[] {
  return [h.canary, BASIC_VALUE, BODY_VALUE].flatMap((v) => needlesOf(v).map((n) => n.text));
}
function expectNoSecret(agentBytes: string): void {
  for (const form of secretForms()) expect(agentBytes.includes(form), `agent saw a secret form: ${form.slice(0, 6)}…`).toBe(false);
  expect(findCanary(h, [agentBytes])).toEqual([]);
}

async function send(bytes: string, host = 'api.example.test'): Promise<string> {
  const socket: tls.TLSSocket = await rawTlsVia(h, host);
  return exchange(socket, bytes, 5_000);
}
const bearer = `Authorization: Bearer ${PLACEHOLDER}\r\n`;
/** Stores a body upstream through keyswap, then reads it back with a plain GET; returns what the agent got. */
async function storeAndReadBack(body: string, contentType: string): Promise<string> {
  await send(`POST /v1/store HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  return send(`GET /v1/stored HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n`);
}
const requestsTo = (path: string): number => h.upstream.requests.filter((r) => r.url === path).length;

describe('scrubbing covers every secret bound to the destination, fetched or not', () => {
  // First in the file, so no request has fetched BODY_KEY yet when the upstream already holds it.
  it('a bound secret that keyswap has never fetched is scrubbed from the first response that echoes it', async () => {
    const answer = await storeAndReadBack(`{"stored":"${BODY_VALUE}"}`, 'text/plain');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain(BODY_PH);
    expectNoSecret(answer);
  });

  it('the credential a template renders (an hmac) is scrubbed like a secret', async () => {
    const rendered = createHmac('sha256', HMAC_VALUE).update('v1').digest('hex');
    const answer = await send(`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nx-hmac: ${HMAC_PH}\r\nConnection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers['x-hmac']).toBe(`Token ${rendered}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).not.toContain(rendered);
  });
});

describe('template credentials rendered into a body are scrubbed too', () => {
  it('a body-injected hmac echoed back is replaced by its placeholder', async () => {
    const rendered = createHmac('sha256', BODY_HMAC_VALUE).update('v1').digest('hex');
    const body = `{"sig":"${BODY_HMAC_PH}"}`;
    const answer = await send(`POST /v1/echo-stream HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'inject_decision', secret_name: 'BODY_HMAC', decision: 'allowed' }));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).not.toContain(rendered);
    expect(answer).toContain(BODY_HMAC_PH);
  });
});

describe('framing is exact: the upstream sees exactly the requests the agent sent', () => {
  it('a GET with a chunked body is forwarded framed, so a request hidden in its body never reaches the upstream', async () => {
    const hidden = `GET /v1/smuggled HTTP/1.1\r\nHost: api.example.test\r\n${bearer}\r\n`;
    const chunk = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
    const answer = await send(`GET /v1/upload HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    // A second request on the pooled upstream connection gets its own answer, not the hidden request's.
    const next = await send(`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Connection: close\r\n\r\n`);
    expect(next).toContain('"url":"/v1/echo"');
    expect(requestsTo('/v1/smuggled')).toBe(0);
    expect(h.upstream.requests.find((r) => r.url === '/v1/upload' && r.method === 'GET')?.body.toString()).toBe(hidden);
    expectNoSecret(answer + next);
  });

  it('a malformed request pipelined behind good ones is refused after their answers, never as one of them', async () => {
    const good = (id: string): string => `GET /v1/echo?id=${id} HTTP/1.1\r\nHost: api.example.test\r\n\r\n`;
    const bad = `POST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`;
    const answer = await send(`${good('first')}${good('second')}${bad}`);
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '400']);
    expect(answer.indexOf('id=first')).toBeLessThan(answer.indexOf('id=second'));
    expect(answer.indexOf('id=second')).toBeLessThan(answer.indexOf('keyswap: bad request'));
  });

  it('a request pipelined behind one that fails late is not sent upstream until that answer is out, then not at all', async () => {
    // An upstream that accepts and hangs up without answering: the first request fails after a while, with a
    // 502 that closes the connection; the second, behind it, must never have gone upstream meanwhile.
    const dead = net.createServer((sock) => { sock.on('data', () => undefined); setTimeout(() => sock.destroy(), 300); });
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', () => resolve()));
    const port = (dead.address() as net.AddressInfo).port;
    const before = h.plainUpstream.requests.length;
    const socket = await rawPlain(h);
    const answer = await exchange(socket, `GET http://127.0.0.1:${port}/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\nGET http://plain.example.test/v1/echo HTTP/1.1\r\nHost: plain.example.test\r\n${bearer}\r\n`, 3_000);
    dead.close();
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(h.plainUpstream.requests.length).toBe(before);
  });

  it('an Upgrade pipelined behind a streaming answer is refused after it, never in its place', async () => {
    const answer = await send(`GET /v1/sse HTTP/1.1\r\nHost: api.example.test\r\n\r\nGET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    // A WebSocket upgrade without its key is malformed (400); what is pinned is where the refusal comes.
    expect(answer.indexOf('data: second')).toBeLessThan(answer.indexOf('HTTP/1.1 400'));
  });

  it('a HEAD with a body is refused with 400 and nothing is sent', async () => {
    const answer = await send(`HEAD /v1/echo?id=head-body HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Content-Length: 5\r\nConnection: close\r\n\r\nhello`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(h.upstream.requests.some((r) => r.url.includes('head-body'))).toBe(false);
  });

  it('a request pipelined behind an answer that closes the connection is never forwarded', async () => {
    const refused = `GET /v1/echo?id=refused HTTP/1.1\r\nHost: other.example.test\r\n${bearer}\r\n`;
    const behind = `GET /v1/echo?id=behind HTTP/1.1\r\nHost: api.example.test\r\n${bearer}\r\n`;
    const answer = await send(`${refused}${behind}`);
    expect(answer).toMatch(/^HTTP\/1\.1 421 /);
    expect(answer).toContain('connection: close');
    expect(h.upstream.requests.some((r) => r.url.includes('id=behind') || r.url.includes('id=refused'))).toBe(false);
  });

  it('a DELETE with a Content-Length body keeps its length upstream', async () => {
    const body = 'x'.repeat(37);
    const answer = await send(`DELETE /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    const seen = h.upstream.requests.filter((r) => r.method === 'DELETE').at(-1);
    expect(seen?.headers['content-length']).toBe('37');
    expect(seen?.body.toString()).toBe(body);
  });

  it('a Transfer-Encoding other than chunked alone is refused with 400 and nothing is sent', async () => {
    const before = h.upstream.requests.length;
    const answer = await send(`POST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(h.upstream.requests.length).toBe(before);
  });
});

describe('one reading of the wire: a header policy reads may appear once', () => {
  it.each([
    ['two Host headers', `Host: api.example.test\r\nHost: other.example.test\r\n${bearer}`],
    ['two Authorization headers', `Host: api.example.test\r\n${bearer}Authorization: Bearer other\r\n`],
    ['two method overrides', `Host: api.example.test\r\n${bearer}X-HTTP-Method-Override: GET\r\nX-HTTP-Method-Override: DELETE\r\n`],
  ])('%s get 400 and nothing goes upstream', async (_name, headers) => {
    const before = h.upstream.requests.length;
    const answer = await send(`GET /v1/echo HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('keyswap: bad request');
    expect(h.upstream.requests.length).toBe(before);
  });

  it('the upstream gets the Host keyswap checked, in its canonical spelling', async () => {
    await send(`GET /v1/echo HTTP/1.1\r\nHost: API.Example.Test.:443\r\nConnection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers.host).toBe('api.example.test');
  });
});

describe('scrubbing cannot be switched off by the agent or the upstream', () => {
  const respond = (spec: RespondSpec, extra = ''): Promise<string> =>
    send(`GET /v1/respond HTTP/1.1\r\nHost: api.example.test\r\n${bearer}x-respond: ${respondHeader(spec)}\r\n${extra}Connection: close\r\n\r\n`);

  it("keyswap chooses Accept-Encoding upstream: only codings it can undo, whatever the agent asked for", async () => {
    await send(`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Accept-Encoding: zstd\r\nConnection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers['accept-encoding']).toBe('gzip, deflate, br');
  });

  it.each([
    ['zstd', { 'content-encoding': 'zstd' }],
    ['gzip, gzip (stacked)', { 'content-encoding': 'gzip, gzip' }],
    ['an unknown coding', { 'content-encoding': 'x-custom' }],
  ])('a response in %s is blocked with 502 and audited, never forwarded', async (_name, headers) => {
    const answer = await respond({ headers, chunks: [gzipSync(gzipSync(`{"k":"${h.canary}"}`)).toString('base64')] }, 'Accept-Encoding: zstd\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).toContain('encoding keyswap cannot inspect');
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'deny' && r.reason === 'upstream_encoding_unsupported'))).toBe(true);
    expectNoSecret(answer);
  });

  it.each([
    ['raw deflate (as many servers send it)', deflateRawSync],
    ['zlib deflate (as RFC 9110 means it)', deflateSync],
  ])('a body labelled deflate in %s is decoded and scrubbed as browsers read it, not cut (issue #33)', async (_name, deflate) => {
    const body = deflate(Buffer.from(`{"k":"${h.canary}","note":"still readable"}`));
    const answer = await respond({ headers: { 'content-encoding': 'deflate' }, chunks: [body.subarray(0, 7).toString('base64'), body.subarray(7).toString('base64')] });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('"note":"still readable"');
    expect(answer.toLowerCase()).not.toContain('content-encoding');
    expectNoSecret(answer);
  });

  it("the status line carries the standard reason phrase, never the upstream's", async () => {
    const answer = await respond({ status: 200, reason: `OK ${h.canary}` });
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expectNoSecret(answer);
  });

  it('an echo in a response header name is scrubbed too', async () => {
    const answer = await respond({ headers: { [`x-${h.canary}`]: 'y' } });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expectNoSecret(answer);
  });

  it.each(['u', 'us', 'usr', 'user'])('a Basic echo with the agent-chosen user %j is scrubbed at every base64 alignment', async (user) => {
    const auth = `Authorization: Basic ${Buffer.from(`${user}:${BASIC_PH}`).toString('base64')}\r\n`;
    const answer = await send(`GET /v1/echo-header HTTP/1.1\r\nHost: api.example.test\r\n${auth}Connection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Basic ${Buffer.from(`${user}:${BASIC_VALUE}`).toString('base64')}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).not.toContain(Buffer.from(`${user}:${BASIC_VALUE}`).toString('base64'));
    expectNoSecret(answer);
  });

  it('an echo inside a larger base64 blob is scrubbed at every offset', async () => {
    const chunks = [0, 1, 2].map((k) => Buffer.from(Buffer.from(`${'p'.repeat(k)}{"key":"${h.canary}"}`).toString('base64')).toString('base64'));
    const answer = await respond({ chunks: chunks.flatMap((c) => [c, Buffer.from('\n').toString('base64')]) });
    expectNoSecret(answer);
  });

  it('a body secret echoed by an upstream that answers before reading the body is scrubbed', async () => {
    // The placeholder is sent only once the response head has reached the agent: the scrubber must already know
    // the body secret then, not learn it later.
    const first = '{"pad":"' + 'x'.repeat(64) + '",';
    const rest = `"token":"${BODY_PH}"}`;
    const socket = await rawTlsVia(h, 'api.example.test');
    let answer = '';
    socket.on('data', (c: Buffer) => { answer += c.toString('latin1'); });
    socket.write(`POST /v1/echo-stream HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: ${first.length + rest.length}\r\nConnection: close\r\n\r\n${first}`);
    expect(await waitFor(() => answer.includes('\r\n\r\n'))).toBe(true);
    socket.write(rest);
    await new Promise((resolve) => { socket.once('close', resolve); setTimeout(resolve, 5_000).unref(); });
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain(BODY_PH);
    expectNoSecret(answer);
  });

  it('a secret stored upstream by one request is scrubbed when a later plain GET reads it back', async () => {
    const answer = await storeAndReadBack(`{"token":"${BODY_PH}"}`, 'application/json');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain(BODY_PH);
    expectNoSecret(answer);
  });
});

describe('paths and methods: scope as the upstream will read it', () => {
  it.each(['/v1/..;/admin', '/v1/%252e%252e/admin', '/v1/%c0%ae%c0%ae/admin', '/v1/x;jsessionid=1'])('%s keeps the placeholder, audited as out of scope', async (path) => {
    await send(`GET ${path} HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Connection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
  });

  it.each(['_method=DELETE', '%5Fmethod=DELETE', '.method=DELETE', '_method%5B%5D=DELETE'])('a method override in the query (%s) counts as the method', async (query) => {
    await send(`GET /v1/echo?${query} HTTP/1.1\r\nHost: api.example.test\r\n${bearer}Connection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
  });

  it('a path override header (X-Original-URL) takes the request out of path scope', async () => {
    await send(`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${bearer}X-Original-URL: /admin\r\nConnection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
  });

  it('X-HTTP-Method-Override counts as the method: a DELETE override on a GET keeps the placeholder', async () => {
    await send(`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${bearer}X-HTTP-Method-Override: DELETE\r\nConnection: close\r\n\r\n`);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ reason: 'binding_scope_violation', secret_name: 'TEST_API_KEY' }));
  });
});

describe('connection lifetimes', () => {
  it('a decrypted connection that sends nothing after its handshake is closed at the request-head timeout', async () => {
    const socket = await rawTlsVia(h, 'api.example.test');
    socket.resume(); // read what keyswap sends (its 408), so the end of the stream is seen
    const closed = new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 8_000).unref();
    });
    expect(await closed).toBe(true);
  });

  it('a request head dribbled a byte at a time is cut at the request-head timeout', async () => {
    const socket = await rawTlsVia(h, 'api.example.test');
    let open = true;
    socket.once('close', () => { open = false; });
    socket.on('error', () => {});
    socket.resume();
    const line = 'GET /v1/echo HTTP/1.1\r\nX-Slow: ';
    for (let i = 0; i < 80 && open; i++) {
      socket.write(line[i] ?? 'a');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(open).toBe(false);
  });

  it('an opaque tunnel with no traffic is closed at the tunnel idle timeout', async () => {
    const socket = await rawTlsVia(h, 'unbound.example.test', 443, { ca: h.testCaPem });
    socket.resume();
    expect(await waitFor(() => socket.destroyed || socket.readableEnded, 8_000, 50)).toBe(true);
  });

  it.each(['127.1', '2130706433', '0x7f000001', '[::ffff:7f00:1]'])('a CONNECT to keyswap by the numeric spelling %s is refused, never tunnelled', async (host) => {
    await expect(rawTlsVia(h, host, h.proxyPort)).rejects.toThrow(/CONNECT refused: HTTP\/1\.1 (400|403)/);
  });

  it("a CONNECT to keyswap's own address is refused (403) instead of nesting", async () => {
    await expect(rawTlsVia(h, '127.0.0.1', h.proxyPort)).rejects.toThrow(/403/);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'deny' && r.reason === 'self_destination'))).toBe(true);
  });
});

describe('honeytokens are found wherever keyswap reads, bodies included', () => {
  it('a honeytoken placeholder in a request body adds a durable honeytoken_triggered event', async () => {
    const body = `{"note":"${TRAP_PH}"}`;
    const answer = await send(`POST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'honeytoken_triggered', secret_name: 'TRAP_KEY', decision: 'denied' }));
  });
});
