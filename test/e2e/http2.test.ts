import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { h2Request, h2Via } from '../helpers/h2-client.js';
import { startH2Upstream, type H2Upstream } from '../helpers/h2-upstream.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

// HTTP/2 to the agent: every stream goes through the same pipeline as an HTTP/1.1 request (same decide, same
// audit, same scrubbing); upstream over h2 when the upstream offers it, else HTTP/1.1.
const MISSING_PH = 'missing-PLACEHOLDER-0123456789abcdef';
let h: Harness;
let up: H2Upstream;
beforeAll(async () => {
  const testCa = createTestCa();
  let auditPath = '';
  up = await startH2Upstream({ tls: testCa.issue(['h2.example.test', 'missing.example.test']), auditPath: () => auditPath });
  h = await startHarness({
    testCa,
    resolve: { 'h2.example.test:443': `127.0.0.1:${up.port}`, 'missing.example.test:443': `127.0.0.1:${up.port}` },
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
      - { host: h2.example.test, methods: [GET, POST], paths: ["/v1/**"] }
  NOT_IN_BACKEND:
    placeholder: "${MISSING_PH}"
    inject: { header: X-Key, format: "{NOT_IN_BACKEND}" }
    bindings: [{ host: missing.example.test }]
`,
  });
  auditPath = h.auditPath;
});
afterAll(async () => {
  await h.close();
  await up.close();
});

const auth = { authorization: `Bearer ${PLACEHOLDER}` };

describe('curl --http2 through keyswap', () => {
  it('to an HTTP/1.1-only upstream: curl speaks HTTP/2 to keyswap, the upstream gets the secret over HTTP/1.1', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--http2', '-w', '\n%{http_version}'] });
    expect(r.status).toBe(200);
    expect(r.body.trim().split('\n').at(-1)).toBe('2');
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('to an h2 upstream: HTTP/2 end to end, the secret injected, its echo scrubbed', async () => {
    const r = await curlVia(h, 'https://h2.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--http2', '-w', '\n%{http_version}'] });
    expect(r.status).toBe(200);
    expect(r.body.trim().split('\n').at(-1)).toBe('2');
    const seen = up.requests.at(-1);
    expect(seen?.httpVersion).toBe('2.0');
    expect(seen?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(r.headers['x-echo-auth']).toBe(`Bearer ${PLACEHOLDER}`);
    expect(r.body).toContain(`Bearer ${PLACEHOLDER}`);
    expect(r.body).not.toContain(h.canary);
  });
});

describe('an HTTP/2 agent\'s streams', () => {
  it('32 concurrent streams over one connection each get the secret, each audited before it left (K5)', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const before = up.requests.length;
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => h2Request(session, { ':path': `/v1/echo?i=${i}`, ...auth })));
    expect(results.map((r) => r.status)).toEqual(Array(32).fill(200));
    const seen = up.requests.slice(before);
    expect(seen).toHaveLength(32);
    for (const s of seen) {
      expect(s.headers.authorization).toBe(`Bearer ${h.canary}`);
      expect(s.auditAtArrival).toMatch(/"type":"inject_decision"[^\n]*"secret_name":"TEST_API_KEY"/);
    }
    for (const r of results) expect(r.body).not.toContain(h.canary);
    session.close();
  });

  it('destination rule: an :authority other than the CONNECT target is refused (421) on that stream; the session carries on', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const before = up.requests.length;
    const wrong = await h2Request(session, { ':path': '/v1/echo', ':authority': 'api.example.test', ...auth });
    expect(wrong.status).toBe(421);
    expect(up.requests.length).toBe(before);
    const right = await h2Request(session, { ':path': '/v1/echo', ...auth });
    expect(right.status).toBe(200);
    session.close();
  });

  it(':authority and a different host header name two destinations: 400, nothing sent', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const before = up.requests.length;
    const r = await h2Request(session, { ':path': '/v1/echo', host: 'api.example.test', ...auth });
    // Node's client sends host in place of :authority when given one; add the pseudo-header explicitly too.
    const both = await h2Request(session, { ':path': '/v1/echo', ':authority': 'h2.example.test', host: 'evil.example.test', ...auth });
    expect([r.status, both.status]).toEqual([421, 400]);
    expect(up.requests.length).toBe(before);
    session.close();
  });

  it('scope: a path outside the binding keeps the placeholder, audited', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const r = await h2Request(session, { ':path': '/other', ...auth });
    expect(r.status).toBe(200);
    expect(up.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'inject_decision' && e.reason === 'binding_scope_violation'))).toBe(true);
    session.close();
  });

  it('fail closed: a secret the backend cannot give refuses that stream with 503, nothing dialled', async () => {
    const session = await h2Via(h, 'missing.example.test');
    const before = up.requests.length;
    const r = await h2Request(session, { ':path': '/v1/echo', 'x-key': MISSING_PH });
    expect(r.status).toBe(503);
    expect(up.requests.length).toBe(before);
    session.close();
  });

  it('a request body streams through to the h2 upstream', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const body = JSON.stringify({ x: 'y'.repeat(100_000) });
    const r = await h2Request(session, { ':path': '/v1/echo', ':method': 'POST', 'content-type': 'application/json', ...auth }, body);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).body).toBe(body);
    session.close();
  });

  it('trailers reach the agent, scrubbed', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const r = await h2Request(session, { ':path': '/v1/trailers', te: 'trailers', ...auth });
    expect(r.status).toBe(200);
    expect(r.body).toBe('body before trailers\n');
    expect(r.trailers?.['grpc-status']).toBe('0');
    expect(r.trailers?.['x-echo-auth']).toBe(`Bearer ${PLACEHOLDER}`);
    session.close();
  });

  it('an upstream reset mid-body resets the agent\'s stream with an error code, never a clean end', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const r = await h2Request(session, { ':path': '/v1/reset', ...auth });
    expect(r.body).toBe('partial ');
    expect(r.rstCode).not.toBe(0);
    session.close();
  });

  it('an agent that resets its stream cancels the upstream one', async () => {
    const session = await h2Via(h, 'h2.example.test');
    const stream = session.request({ ':path': '/v1/slow', ...auth });
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    const seen = up.requests.at(-1);
    stream.close(8);
    expect(await waitFor(() => seen?.aborted === true)).toBe(true);
    session.close();
  });

  it('no secret in any log or audit line', () => {
    expect(findCanary(h)).toEqual([]);
  });
});
