import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { FLAG, frame, literal, rawH2, TYPE, type RawFrame } from '../helpers/h2-frames.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

/*
 * Issue #32's HTTP/2 findings: the head of an HTTP/2 request is read as the bytes that go upstream. A lower-case
 * :method (nghttp2 accepts `head`; Node's HTTP/1.1 client sends HEAD) and raw bytes past ASCII in :path (overlong
 * UTF-8 for `.`) are refused with 400 and nothing sent; HTTP/2 cookie crumbs reach an HTTP/1.1 upstream as one
 * Cookie line joined with "; ".
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

/** A HEADERS frame from literal fields (no Huffman), END_HEADERS set, END_STREAM as asked. */
function headers(stream: number, fields: readonly [string, string][], endStream: boolean): Buffer {
  return frame(TYPE.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), stream, Buffer.concat(fields.map(([n, v]) => literal(n, v))));
}

/** The :status of the response on `stream`, read from a literal or indexed field (keyswap's encoder uses both). */
async function statusOn(frames: RawFrame[], stream: number): Promise<string | null> {
  await waitFor(() => frames.some((f) => f.stream === stream && (f.type === TYPE.HEADERS || f.type === TYPE.RST_STREAM)), 5000);
  const f = frames.find((x) => x.stream === stream && x.type === TYPE.HEADERS);
  if (f === undefined) return null;
  const first = f.payload[0] ?? 0;
  // Static table: 8 = 200, 13 = 404, 12 = 400 (RFC 7541 appendix A); otherwise a literal :status.
  const byIndex: Record<number, string> = { 0x88: '200', 0x89: '204', 0x8a: '206', 0x8b: '304', 0x8c: '400', 0x8d: '404', 0x8e: '500' };
  return byIndex[first] ?? /(\d{3})/.exec(f.payload.toString('latin1'))?.[1] ?? null;
}

describe('an HTTP/2 head is read as the bytes that go upstream', () => {
  it('a lower-case :method (head, with a body smuggling a request) is refused with 400, nothing sent, audited as sent', async () => {
    const before = h.upstream.requests.length;
    const { socket, frames } = await rawH2(h, 'api.example.test');
    const smuggled = 'GET /v1/echo HTTP/1.1\r\nhost: api.example.test\r\n\r\n';
    socket.write(Buffer.concat([
      headers(1, [[':method', 'head'], [':scheme', 'https'], [':path', '/v1/echo'], [':authority', 'api.example.test'], ['authorization', `Bearer ${PLACEHOLDER}`], ['content-length', String(smuggled.length)]], false),
      frame(TYPE.DATA, FLAG.END_STREAM, 1, Buffer.from(smuggled)),
    ]));
    expect(await statusOn(frames, 1)).toBe('400');
    socket.destroy();
    expect(h.upstream.requests.length).toBe(before);
    expect(h.auditText()).not.toContain(h.canary);
    expect(h.auditRecords().filter((r) => r.type === 'inject_decision' && r.method === 'head')).toEqual([]);
  });

  it('raw bytes past ASCII in :path (/v1/\\xc0\\xae\\xc0\\xae/x, overlong UTF-8 for ..) are refused with 400 before policy: nothing decided, nothing sent', async () => {
    const before = h.upstream.requests.length;
    const allowedBefore = h.auditRecords().filter((r) => r.type === 'inject_decision' && r.decision === 'allowed').length;
    const { socket, frames } = await rawH2(h, 'api.example.test');
    socket.write(headers(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/v1/\xc0\xae\xc0\xae/x'], [':authority', 'api.example.test'], ['authorization', `Bearer ${PLACEHOLDER}`]], true));
    expect(await statusOn(frames, 1)).toBe('400');
    socket.destroy();
    expect(h.upstream.requests.length).toBe(before);
    // Policy never matched the path to /v1/** (an HTTP/2 upstream would have been sent it with the secret).
    expect(h.auditRecords().filter((r) => r.type === 'inject_decision' && r.decision === 'allowed').length).toBe(allowedBefore);
  });

  it('the same request with a well-formed head still goes through (the refusals are about the bytes, not HTTP/2)', async () => {
    const before = h.upstream.requests.length;
    const { socket, frames } = await rawH2(h, 'api.example.test');
    socket.write(headers(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/v1/echo'], [':authority', 'api.example.test'], ['authorization', `Bearer ${PLACEHOLDER}`]], true));
    expect(await statusOn(frames, 1)).toBe('200');
    socket.destroy();
    expect(h.upstream.requests.length).toBe(before + 1);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('cookie crumbs reach an HTTP/1.1 upstream as one Cookie line joined with "; " (RFC 9113 §8.2.3)', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--http2'] });
    expect(r.status).toBe(200);
    const { socket, frames } = await rawH2(h, 'api.example.test');
    const before = h.upstream.requests.length;
    socket.write(headers(1, [[':method', 'GET'], [':scheme', 'https'], [':path', '/v1/echo'], [':authority', 'api.example.test'], ['cookie', 'a=1'], ['cookie', 'b=2'], ['cookie', 'c=3']], true));
    expect(await statusOn(frames, 1)).toBe('200');
    socket.destroy();
    expect(h.upstream.requests.length).toBe(before + 1);
    const raw = h.upstream.requests.at(-1)?.rawHeaders ?? [];
    expect(raw.filter((_, i) => i % 2 === 0 && raw[i]?.toLowerCase() === 'cookie').length).toBe(1);
    expect(h.upstream.requests.at(-1)?.headers.cookie).toBe('a=1; b=2; c=3');
  });
});
