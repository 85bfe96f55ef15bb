import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type tls from 'node:tls';
import { curlVia, exchange, pythonRequestsVia, rawTlsVia, undiciVia } from '../helpers/clients.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const AUTH = `Authorization: Bearer ${PLACEHOLDER}`;
const decisions = (): Record<string, unknown>[] => h.auditRecords().filter((r) => r.type === 'inject_decision');
const lastSeen = (): { headers: Record<string, unknown>; auditAtArrival: string; url: string } => h.upstream.requests[h.upstream.requests.length - 1] as never;

describe('the secret reaches a bound upstream, for every kind of client', () => {
  it('curl: the upstream sees the real secret, and its echo reaches curl as the placeholder', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [AUTH] });
    expect(res.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(findCanary(h, [res.body, JSON.stringify(res.headers)])).toEqual([]);
  });

  it('undici ProxyAgent: the upstream sees the real secret', async () => {
    const res = await undiciVia(h, 'https://api.example.test/v1/echo', { method: 'POST', headers: { authorization: `Bearer ${PLACEHOLDER}` }, body: '{}' });
    expect(res.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(findCanary(h, [res.body])).toEqual([]);
  });

  it('python requests: the upstream sees the real secret', async () => {
    const res = await pythonRequestsVia(h, 'https://api.example.test/v1/echo', { headers: { Authorization: `Bearer ${PLACEHOLDER}` } });
    expect(res.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(findCanary(h, [res.body])).toEqual([]);
  });

  it('the inject_decision line is already in the audit file when the upstream receives the request (K5)', async () => {
    await curlVia(h, 'https://api.example.test/v1/echo?k5=1', { headers: [AUTH] });
    const seen = lastSeen();
    expect(seen.url).toBe('/v1/echo?k5=1');
    const atArrival = seen.auditAtArrival.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const decision = atArrival.filter((r) => r.type === 'inject_decision' && r.decision === 'allowed');
    expect(decision.length).toBeGreaterThan(0);
    // The record of this very request is the last decision on disk when it arrived.
    const id = decision[decision.length - 1]?.request_id;
    await waitFor(() => h.auditRecords().some((r) => r.type === 'upstream_response' && r.request_id === id));
    expect(h.auditRecords().find((r) => r.type === 'upstream_response' && r.request_id === id)).toMatchObject({ status: 200, complete: true });
  });
});

describe('fail closed: placeholders aimed outside their binding travel verbatim (K4)', () => {
  it.each([
    ['an off-scope method', 'binding_scope_violation', 'DELETE', 'https://api.example.test/v1/echo'],
    ['an off-scope path', 'binding_scope_violation', 'GET', 'https://api.example.test/admin/echo'],
  ])('%s gets the placeholder, audited as %s', async (_name, reason, method, url) => {
    const before = decisions().length;
    const res = await curlVia(h, url, { method, headers: [AUTH] });
    expect(res.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    expect(decisions().slice(before)).toContainEqual(expect.objectContaining({ decision: 'denied', reason, secret_name: 'TEST_API_KEY' }));
  });

  it('an unbound host is tunnelled: the client sees the upstream’s own certificate, and the placeholder only', async () => {
    const withKeyswapCa = await curlVia(h, 'https://unbound.example.test/v1/echo', { headers: [AUTH] });
    expect(withKeyswapCa.status).toBe(0);
    expect(withKeyswapCa.exitCode).toBe(60); // curl: peer certificate cannot be authenticated with known CA
    const withUpstreamCa = await curlVia(h, 'https://unbound.example.test/v1/echo', { headers: [AUTH], cacert: h.testCaPath });
    expect(withUpstreamCa.status).toBe(200);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    // tls_passthrough is written lazily (with the next durable batch, or within 100 ms).
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'tls_passthrough'))).toBe(true);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'tls_passthrough', destination: expect.objectContaining({ host: 'unbound.example.test', port: 443 }) }));
  });

  it('a placeholder in a header that is not its site travels verbatim and the request still succeeds', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`X-Other: ${PLACEHOLDER}`] });
    expect(res.status).toBe(200);
    expect(lastSeen().headers['x-other']).toBe(PLACEHOLDER);
    expect(decisions()[decisions().length - 1]).toMatchObject({ decision: 'denied', reason: 'site_violation' });
  });
});

describe('the destination is the CONNECT target (K3)', () => {
  it('answers 421 and sends nothing upstream when Host disagrees with the CONNECT target', async () => {
    const before = h.upstream.requests.length;
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: ['Host: evil.test', AUTH] });
    expect(res.status).toBe(421);
    expect(res.body).toBe('keyswap: request host does not match the CONNECT target\n');
    expect(h.upstream.requests.length).toBe(before);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'deny', reason: 'sni_host_mismatch', status: 421 }));
  });

  it('answers 421 when the SNI disagrees with the CONNECT target', async () => {
    // curl --connect-to keeps SNI and Host = other.example.test while the CONNECT goes to api.example.test.
    const before = h.upstream.requests.length;
    const res = await curlVia(h, 'https://other.example.test/v1/echo', { headers: [AUTH], extra: ['--connect-to', 'other.example.test:443:api.example.test:443', '-k'] });
    expect([0, 421]).toContain(res.status);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('an upstream whose certificate keyswap cannot verify gets 502 and never an HTTP request (K2)', async () => {
    const res = await curlVia(h, 'https://untrusted.example.test/v1/echo', { headers: [AUTH] });
    expect(res.status).toBe(502);
    expect(res.body).toBe('keyswap: upstream certificate not trusted\n');
    expect(h.untrustedUpstream.requests).toHaveLength(0);
  });
});

describe('agent TLS', () => {
  it("an agent's next connection to a bound host resumes its TLS session (no full handshake)", async () => {
    const first = await rawTlsVia(h, 'api.example.test');
    // TLS 1.3 tickets arrive after the handshake, with the first response.
    const ticket = new Promise<Buffer>((resolve) => first.once('session', resolve));
    await exchange(first, `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${AUTH}\r\nConnection: close\r\n\r\n`);
    const second: tls.TLSSocket = await rawTlsVia(h, 'api.example.test', 443, { session: await ticket });
    expect(second.isSessionReused()).toBe(true);
    expect(await exchange(second, `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${AUTH}\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 200/);
  });
});

describe('plain http (K2)', () => {
  it('a bound host without allow_plaintext gets the placeholder, audited plaintext_not_allowed', async () => {
    const res = await curlVia(h, 'http://api.example.test/v1/echo', { headers: [AUTH] });
    expect(res.status).toBe(200);
    const seen = h.plainUpstream.requests[h.plainUpstream.requests.length - 1];
    expect(seen?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    expect(decisions()[decisions().length - 1]).toMatchObject({ decision: 'denied', reason: 'plaintext_not_allowed' });
  });

  it('a binding with allow_plaintext: true gets the secret over plain http', async () => {
    await curlVia(h, 'http://plain.example.test/v1/echo', { headers: [AUTH] });
    expect(h.plainUpstream.requests[h.plainUpstream.requests.length - 1]?.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('a plain-http request with a spoofed Host of a bound host gets no secret', async () => {
    const before = h.plainUpstream.requests.length;
    const res = await curlVia(h, 'http://unbound.example.test/v1/echo', { headers: ['Host: plain.example.test', AUTH] });
    expect(res.status).toBe(421);
    const after = h.plainUpstream.requests.slice(before);
    expect(after.every((r) => r.headers.authorization !== `Bearer ${h.canary}`)).toBe(true);
    expect(after).toHaveLength(0);
  });
});

describe('streams', () => {
  it('an upstream reset mid-body makes curl fail, never a clean 200', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/reset', { headers: [AUTH] });
    expect(res.exitCode).not.toBe(0);
    expect([18, 56, 92]).toContain(res.exitCode);
  });

  it('a client abort closes the upstream request', async () => {
    const before = h.upstream.requests.length;
    const res = await curlVia(h, 'https://api.example.test/v1/slow', { headers: [AUTH], maxTimeSeconds: 1 });
    expect(res.exitCode).toBe(28); // curl's own timeout: it hung up
    const seen = h.upstream.requests[before];
    expect(await waitFor(() => seen?.aborted === true)).toBe(true);
  });

  it('a 5 MiB upload arrives byte-exact', async () => {
    const body = 'z'.repeat(5 * 1024 * 1024);
    const res = await undiciVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: { authorization: `Bearer ${PLACEHOLDER}` }, body });
    expect(JSON.parse(res.body)).toMatchObject({ bytes: body.length });
  });
});

describe('K1', () => {
  it('the canary secret never appears in keyswap’s stdout, stderr or audit file', () => {
    expect(h.auditRecords().length).toBeGreaterThan(10);
    expect(findCanary(h)).toEqual([]);
  });
});
