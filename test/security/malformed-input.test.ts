import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia, exchange, rawPlain, rawTlsVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

async function stillServes(): Promise<void> {
  const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
  expect(res.status).toBe(200);
  expect(h.child.exitCode).toBeNull();
}

describe('malformed input gets a clear 4xx and the process stays up (K9)', () => {
  it.each([
    ['Host: x:99999 gets 400', 'GET /v1/echo HTTP/1.1\r\nHost: x:99999\r\n\r\n', 400],
    ['a CL+TE request gets 400', 'POST /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['two Content-Length headers get 400', 'POST /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
    ['a bare LF request line gets 400', 'GET /v1/echo HTTP/1.1\nHost: api.example.test\n\n', 400],
    ['an invalid header name gets 400', 'GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nBad Header: x\r\n\r\n', 400],
    ['oversized headers get 431', `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`, 431],
    ['a request with no Host gets 400', 'GET /v1/echo HTTP/1.1\r\n\r\n', 400],
  ])('%s', async (_name, raw, status) => {
    const before = h.upstream.requests.length;
    const socket = await rawTlsVia(h, 'api.example.test');
    const answer = await exchange(socket, raw);
    expect(answer.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(h.upstream.requests.length).toBe(before);
    await stillServes();
  });

  it.each([
    ['a CONNECT target with an out-of-range port', 'CONNECT api.example.test:99999 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a CONNECT target without a port', 'CONNECT api.example.test HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a CONNECT target with userinfo', 'CONNECT user@api.example.test:443 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an origin-form request to the proxy itself', 'GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n\r\n'],
    ['TLS garbage on the plain listener', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n'],
  ])('%s gets 400 and nothing is dialled', async (_name, raw) => {
    const before = h.upstream.requests.length;
    const answer = await exchange(await rawPlain(h), raw);
    expect(answer.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 400 /);
    expect(h.upstream.requests.length).toBe(before);
    await stillServes();
  });

  it('TLS garbage inside a CONNECT tunnel only closes that connection', async () => {
    const sock = await rawPlain(h);
    const answer = await exchange(sock, 'CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\nthis is not tls\r\n\r\n', 2_000);
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
    await stillServes();
  });
});

describe('the destination check (K3)', () => {
  it('a TLS session whose SNI names another host gets 421 for its requests, and nothing goes upstream', async () => {
    const before = h.upstream.requests.length;
    // The agent ignores the certificate mismatch on purpose: only keyswap's own check stands in the way.
    const socket = await rawTlsVia(h, 'api.example.test', 443, { servername: 'other.example.test', rejectUnauthorized: false });
    const answer = await exchange(socket, `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`);
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 421 Misdirected Request');
    expect(h.upstream.requests.length).toBe(before);
  });

  it('requests are checked one by one on a keep-alive connection, not once per connection', async () => {
    const socket = await rawTlsVia(h, 'api.example.test');
    const answer = await exchange(
      socket,
      `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n\r\nGET /v1/echo HTTP/1.1\r\nHost: other.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`,
    );
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '421']);
  });
});
