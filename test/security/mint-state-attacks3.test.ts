import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { cli } from '../helpers/cli.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

// Red-team (attack3): the minted cache's state under an agent that only sends ordinary requests. A provider that
// rotates and revokes refresh tokens on every exchange (Microsoft, Slack, Atlassian), with keyswap's defaults.
const PH_RF = 'rf-PLACEHOLDER-attack3-0123456789abcdef';
const PH_BAD = 'bad-cc-PLACEHOLDER-attack3-0123456789ab';
const CLIENT_ID = 'rf-attack3-client';
const CLIENT_SECRET = `rf-secret-${randomBytes(10).toString('hex')}`;
const INITIAL_RT = `rt-initial-${randomBytes(10).toString('hex')}`;

let h: Harness;
let auth: FakeAuthorities;
const refreshTokens = new Map([[CLIENT_ID, INITIAL_RT]]);
beforeAll(async () => {
  const testCa = createTestCa();
  // expires_in 70 s, default safety 60 s: an access token is served 10 s and renewed ahead from the first reuse.
  auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [CLIENT_ID]: CLIENT_SECRET }, refresh: { tokens: refreshTokens, rotate: true }, expiresInS: 70 });
  h = await startHarness({
    testCa,
    backend: 'backend: { type: file }',
    resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
    secrets: `
  RF:
    placeholder: "${PH_RF}"
    inject: { type: oauth2_refresh, token_url: "https://auth.example.test/oauth2/token", client_id_secret: RF_CLIENT_ID, client_secret_secret: RF_CLIENT_SECRET, refresh_token_secret: RF_REFRESH_TOKEN }
    bindings: [{ host: api.example.test }]
  BAD_CC:
    placeholder: "${PH_BAD}"
    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.test/oauth2/token", client_id_secret: RF_CLIENT_ID, client_secret_secret: WRONG_SECRET }
    bindings: [{ host: other.example.test }]
`,
  });
  for (const [name, value] of [['RF_CLIENT_ID', CLIENT_ID], ['RF_CLIENT_SECRET', CLIENT_SECRET], ['RF_REFRESH_TOKEN', INITIAL_RT], ['WRONG_SECRET', `wrong-${randomBytes(8).toString('hex')}`]]) {
    const r = cli(['secret', 'set', name as string, '--config', path.join(h.dir, 'keyswap.yaml')], { input: value });
    expect(r.status, r.stderr).toBe(0);
  }
});
afterAll(async () => {
  await h.close();
  await auth.close();
});

const call = (ph: string, host = 'api.example.test') => curlVia(h, `https://${host}/v1/echo`, { headers: [`Authorization: Bearer ${ph}`] });

describe('oauth2_refresh with default write_back_min_interval_seconds', () => {
  it('ordinary requests make keyswap discard a rotated refresh token (rate_limited) and brick the credential for good', async () => {
    expect((await call(PH_RF)).status).toBe(200); // RT0 → RT1, written
    const calls = auth.calls.length;
    expect((await call(PH_RF)).status).toBe(200); // refresh-ahead: RT1 → RT2, not written (rate_limited); RT1 revoked
    expect(await waitFor(() => auth.calls.length > calls, 5_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 10_500)); // past the access token's use-by time
    const after = await call(PH_RF);
    const records = h.auditRecords().filter((e) => e.type === 'token_exchange' && e.secret_name === 'RF').map((e) => `${String(e.trigger)}:${String(e.outcome)}:${String(e.reason)}:${String(e.write_back)}`);
    expect(after.status, records.join('\n')).toBe(200);
  }, 30_000);
});

describe('a failing token endpoint', () => {
  it('every request retries the exchange at once (no backoff, no negative caching): 20 requests, 20 token calls', async () => {
    const before = auth.calls.length;
    for (let i = 0; i < 20; i++) expect((await call(PH_BAD, 'other.example.test')).status).toBe(503);
    const made = auth.calls.length - before;
    expect(made, `${made} token endpoint calls for 20 requests`).toBeLessThanOrEqual(3);
  }, 30_000);
});
