import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

// A value with characters that every encoding treats differently: / + " & = and a space.
const ODD = 'odd/sec+ret "va=lue" & more-0123456789';
const ODD_PH = 'sk-PLACEHOLDER-ODD-0123456789abcdefg';
const BLOCK_PH = 'sk-PLACEHOLDER-BLOCK-0123456789abcde';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { ODD_KEY: ODD, BLOCKED_KEY: 'blocked-secret-value-0123456789' },
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  ODD_KEY:
    placeholder: "${ODD_PH}"
    inject: { header: x-api-key, format: "{ODD_KEY}" }
    bindings: [ { host: api.example.test } ]
  BLOCKED_KEY:
    placeholder: "${BLOCK_PH}"
    inject: { header: x-api-key, format: "{BLOCKED_KEY}" }
    response_scrub: block
    bindings: [ { host: other.example.test } ]`,
  });
});
afterAll(async () => {
  await h.close();
});

function forms(v: string): string[] {
  return [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64').replace(/=+$/, ''), Buffer.from(v).toString('base64url'), encodeURIComponent(v), JSON.stringify(v).slice(1, -1)];
}
const AUTH = `Authorization: Bearer ${PLACEHOLDER}`;

describe('response scrubbing: the agent never sees an injected secret echoed back (K1)', () => {
  it('an echo in a JSON body is replaced by the placeholder, and the scrub is audited by name and count', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [AUTH] });
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`); // it really was injected
    expect(res.body).not.toContain(h.canary);
    expect(res.body).toContain(`Bearer ${PLACEHOLDER}`);
    await waitFor(() => h.auditRecords().some((r) => r.type === 'response_scrubbed'));
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'response_scrubbed', secret_name: 'TEST_API_KEY', action: 'redacted', count: 1 }));
  });

  it('an echo in a response header is replaced', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo-header', { headers: [AUTH] });
    expect(res.headers['x-echo']).toBe(`Bearer ${PLACEHOLDER}`);
    expect(JSON.stringify(res.headers) + res.body).not.toContain(h.canary);
  });

  it('raw, base64, URL-safe base64, percent-encoded and JSON-escaped echoes are all replaced', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo-forms', { headers: [`x-api-key: ${ODD_PH}`] });
    expect(h.upstream.requests.at(-1)?.headers['x-api-key']).toBe(ODD);
    for (const f of forms(ODD)) expect(res.body).not.toContain(f);
    expect(res.body.split(ODD_PH).length - 1).toBe(5);
  });

  it('a gzip body is decoded, scrubbed and re-sent uncompressed', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo-gzip', { headers: [AUTH] });
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.body).toContain(PLACEHOLDER);
    expect(res.body).not.toContain(h.canary);
  });

  it('an echo split across many small chunks is still found', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo-split', { headers: [AUTH] });
    expect(res.body).toContain(`Bearer ${PLACEHOLDER}`);
    expect(res.body).not.toContain(h.canary);
  });

  it('an event stream is not held back: the first event arrives before the upstream writes the second', async () => {
    const agent = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } });
    try {
      const res = await request('https://api.example.test/v1/sse', { dispatcher: agent, headers: { authorization: `Bearer ${PLACEHOLDER}` } });
      const reader = res.body[Symbol.asyncIterator]();
      const first = await reader.next();
      expect(String(first.value)).toBe('data: first\n\n');
      // Ordering, not timing: the upstream had not yet finished (it writes the second event 300 ms later) when
      // the first reached the agent, so the scrubber held nothing back that could not be part of an echo.
      expect(h.upstream.requests.at(-1)?.responseDone).toBe(false);
      let rest = '';
      for (let next = await reader.next(); !next.done; next = await reader.next()) rest += String(next.value);
      expect(rest).toBe('data: second\n\n');
    } finally {
      await agent.close();
    }
  });

  it('response_scrub: block turns an echo into 502, and nothing of the secret reaches the agent', async () => {
    const res = await curlVia(h, 'https://other.example.test/v1/echo-header', { headers: [`x-api-key: ${BLOCK_PH}`] });
    expect(res.status).toBe(502);
    expect(res.body).toBe('keyswap: upstream response echoed a credential; blocked\n');
    const body = await curlVia(h, 'https://other.example.test/v1/echo', { headers: [`x-api-key: ${BLOCK_PH}`] });
    expect(body.body).not.toContain('blocked-secret-value');
    expect(body.exitCode === 0 ? body.status : 0).not.toBe(200);
  });
});
