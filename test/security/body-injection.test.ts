import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawTlsVia, undiciVia } from '../helpers/clients.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';

const HOOK_PH = 'xoxb-PLACEHOLDER-0123456789ABCDEFGHIJ';
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { SLACK_TOKEN: 'xoxb-real-slack-token-value' },
    secrets: `
  SLACK_TOKEN:
    placeholder: "${HOOK_PH}"
    inject: { type: body, content_type: application/json, format: "{SLACK_TOKEN}" }
    bindings: [ { host: api.example.test, methods: [POST], paths: ["/v1/**"] } ]`,
  });
});
afterAll(async () => {
  await h.close();
});

describe('body injection', () => {
  it('replaces the placeholder in a JSON body, and its decision is durable before the first body byte arrives (K5)', async () => {
    const res = await undiciVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ token: HOOK_PH, text: 'hi' }) });
    expect(res.status).toBe(200);
    const seen = h.upstream.requests.at(-1);
    expect(seen?.body.toString()).toBe(JSON.stringify({ token: 'xoxb-real-slack-token-value', text: 'hi' }));
    expect(seen?.auditAtFirstBodyByte).toContain('"secret_name":"SLACK_TOKEN"');
    expect(res.body).not.toContain('xoxb-real-slack-token-value'); // the /v1/upload answer has no echo, and nothing leaks
  });

  it('a placeholder split across chunks is still found', async () => {
    const socket = await rawTlsVia(h, 'api.example.test');
    const before = h.upstream.requests.length;
    const half = Math.floor(HOOK_PH.length / 2);
    const body1 = `{"token":"${HOOK_PH.slice(0, half)}`;
    const body2 = `${HOOK_PH.slice(half)}"}`;
    socket.write(`POST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${body1.length.toString(16)}\r\n${body1}\r\n`);
    // The second half goes only once keyswap has passed on what it could of the first: two reads, not one.
    await waitFor(() => (h.upstream.requests[before]?.bodyBytes ?? 0) > 0);
    const answer = await exchange(socket, `${body2.length.toString(16)}\r\n${body2}\r\n0\r\n\r\n`, 3_000);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(h.upstream.requests.at(-1)?.body.toString()).toBe('{"token":"xoxb-real-slack-token-value"}');
  });

  it.each([
    ['a gzip body', 'application/json', gzipSync(Buffer.from(JSON.stringify({ token: HOOK_PH })))],
    ['a binary body', 'application/octet-stream', randomBytes(200_000)],
    ['a body of another content type, even holding the placeholder', 'text/plain', Buffer.from(`token=${HOOK_PH}`)],
  ])('%s passes byte-exact', async (_name, type, bytes) => {
    const res = await undiciVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: { 'content-type': type }, body: bytes as unknown as string });
    expect(JSON.parse(res.body)).toEqual({ bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  });

  it('a body placeholder aimed outside the binding travels verbatim', async () => {
    await undiciVia(h, 'https://api.example.test/v1/upload', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: `{"token":"${HOOK_PH}"}` });
    expect(h.upstream.requests.at(-1)?.body.toString()).toBe(`{"token":"${HOOK_PH}"}`);
  });
});
