import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

// Red-team (attack3): K5 says nothing leaves before its record is durable, and an unwritable audit log means
// nothing is sent (attacks row 21). A minted credential's exchange sends the client secret to the token endpoint
// before any record exists, and keeps doing so while the log cannot be written.
const PH = 'oauth-cc-PLACEHOLDER-audit-attack3-01234';
const CLIENT_ID = 'audit-attack3-client';
const CLIENT_SECRET = `cc-secret-${randomBytes(12).toString('hex')}`;

let h: Harness;
let auth: FakeAuthorities;
beforeAll(async () => {
  const testCa = createTestCa();
  auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [CLIENT_ID]: CLIENT_SECRET } });
  h = await startHarness({
    testCa,
    fileSizeLimitBlocks: 2048,
    auditPrefillBytes: 2048 * 512 - 420,
    resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
    secretValues: { CC_ID: CLIENT_ID, CC_SECRET: CLIENT_SECRET },
    secrets: `
  CC:
    placeholder: "${PH}"
    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.test/oauth2/token", client_id_secret: CC_ID, client_secret_secret: CC_SECRET }
    bindings: [{ host: api.example.test }]
`,
  });
});
afterAll(async () => {
  await h.close();
  await auth.close();
});

describe('token exchanges and an audit log that cannot be written', () => {
  it('with the audit log failing, each request still sends the client secret to the token endpoint and has a token issued, unrecorded', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] })).status);
    expect(statuses.every((s) => s === 503), statuses.join(',')).toBe(true);
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.auditText().includes('token_exchange')).toBe(false);
    expect(auth.calls.length, `${auth.calls.length} client-secret exchanges (${auth.issued.size} tokens issued) with no audit record`).toBe(0);
  });
});
