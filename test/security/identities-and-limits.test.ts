import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const TOKEN_A = 'ks_token-for-agent-a-0123456789';
const TOKEN_B = 'ks_token-for-agent-b-0123456789';
const OTHER_PH = 'sk-PLACEHOLDER-OTHER-0123456789abcd';
const TRAP_PH = 'AKIA-PLACEHOLDER-DECOY-0123456789ab';
const BOT_PH = 'bot-PLACEHOLDER-0123456789abcdefghij';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { OTHER_KEY: 'other-real-value', TRAP_KEY: 'trap-real-value', BOT_TOKEN: '123:abc/def' },
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test, rate: "3/minute" } ]
  OTHER_KEY:
    placeholder: "${OTHER_PH}"
    inject: { header: x-api-key, format: "{OTHER_KEY}" }
    bindings: [ { host: api.example.test } ]
  TRAP_KEY:
    placeholder: "${TRAP_PH}"
    honeytoken: true
    inject: { header: x-trap, format: "{TRAP_KEY}" }
    bindings: [ { host: other.example.test } ]
  BOT_TOKEN:
    placeholder: "${BOT_PH}"
    inject: { type: path }
    bindings: [ { host: api.example.test, paths: ["/*/sendMessage"] } ]
clients:
  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [TEST_API_KEY, TRAP_KEY, BOT_TOKEN] }
  agent-b: { token_sha256: "${sha(TOKEN_B)}", secrets: [OTHER_KEY], expires: "2000-01-01T00:00:00Z" }`,
  });
});
afterAll(async () => {
  await h.close();
});
const asA = (): string => `http://agent-a:${TOKEN_A}@127.0.0.1:${h.proxyPort}`;

describe('per-agent identities', () => {
  it('with clients configured, a request without a token gets 407 and nothing is dialled', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).toMatch(/407/);
    const plain = await curlVia(h, 'http://api.example.test/v1/echo');
    expect(plain.status).toBe(407);
    expect(plain.headers['proxy-authenticate']).toBe('Basic realm="keyswap"');
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.plainUpstream.requests).toHaveLength(0);
  });

  it('a wrong token, and an expired one, get 407 too', async () => {
    const wrong = await curlVia(h, 'http://api.example.test/v1/echo', { proxy: `http://agent-a:nope@127.0.0.1:${h.proxyPort}` });
    expect(wrong.status).toBe(407);
    const expired = await curlVia(h, 'http://api.example.test/v1/echo', { proxy: `http://agent-b:${TOKEN_B}@127.0.0.1:${h.proxyPort}` });
    expect(expired.status).toBe(407);
  });

  it('a token unlocks only its own secrets: others travel verbatim, audited client_not_allowed, with the client named', async () => {
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { proxy: asA(), headers: [`Authorization: Bearer ${PLACEHOLDER}`, `x-api-key: ${OTHER_PH}`] });
    expect(res.status).toBe(200);
    const seen = h.upstream.requests.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(seen?.headers['x-api-key']).toBe(OTHER_PH);
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'inject_decision', decision: 'denied', reason: 'client_not_allowed', secret_name: 'OTHER_KEY', client: 'agent-a' }));
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'inject_decision', decision: 'allowed', secret_name: 'TEST_API_KEY', client: 'agent-a' }));
  });
});

describe('honeytokens, path injection and rate limits', () => {
  it('any use of a honeytoken placeholder, even aimed at the wrong host, adds a durable honeytoken_triggered event', async () => {
    await curlVia(h, 'https://api.example.test/v1/echo', { proxy: asA(), headers: [`x-trap: ${TRAP_PH}`] });
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'honeytoken_triggered', secret_name: 'TRAP_KEY', decision: 'denied', client: 'agent-a' }));
  });

  it('a path placeholder is replaced in its segment, encoded so it cannot add segments', async () => {
    await curlVia(h, `https://api.example.test/${BOT_PH}/sendMessage`, { proxy: asA() });
    expect(h.upstream.requests.at(-1)?.url).toBe(`/${encodeURIComponent('123:abc/def')}/sendMessage`);
    expect(h.auditText()).not.toContain(BOT_PH);
  });

  it('a binding rate of 3/minute gives the 4th request 429 with Retry-After, audited, and nothing sent', async () => {
    const before = h.upstream.requests.length;
    // Earlier tests used one token already.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await curlVia(h, 'https://api.example.test/v1/upload', { proxy: asA(), headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await curlVia(h, 'https://api.example.test/v1/upload', { proxy: asA(), headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.body).toBe('keyswap: rate limit for this credential reached; retry later\n');
    expect(h.upstream.requests.length).toBe(before + 2);
    await waitFor(() => h.auditRecords().some((r) => r.reason === 'rate_limited'));
    expect(h.auditRecords()).toContainEqual(expect.objectContaining({ type: 'deny', reason: 'rate_limited', status: 429, client: 'agent-a' }));
  });
});
