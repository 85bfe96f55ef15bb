import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

// Issue #19: Anthropic's Python SDK sends its key as x-api-key, its TypeScript SDK as `Authorization: Bearer`.
// One secret accepts its placeholder at both sites and writes the value only where the placeholder was found.
let h: Harness;
const WEBHOOK = `wh-real-${Date.now()}-canary`;
const WH_PH = 'wh_PLACEHOLDER_01HXY1234567890ABCDEF';
beforeAll(async () => {
  h = await startHarness({
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject:
      - { header: x-api-key, format: "{TEST_API_KEY}" }
      - { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/**"] }
  WEBHOOK_TOKEN:
    placeholder: "wh_PLACEHOLDER_01HXY1234567890ABCDEF"
    inject:
      type: multi
      injectors:
        - { header: X-Webhook-Token, format: "{WEBHOOK_TOKEN}" }
        - { type: body, content_type: application/json, format: "{WEBHOOK_TOKEN}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/upload"] }
`,
    secretValues: { WEBHOOK_TOKEN: WEBHOOK },
  });
});
afterAll(async () => {
  await h.close();
});

const post = (headers: string[]) => curlVia(h, 'https://api.example.test/v1/echo', { method: 'POST', headers, data: '{}' });

describe('a secret with two sites, through the real proxy', () => {
  it('x-api-key: the value goes there, and Authorization is left as sent', async () => {
    const r = await post([`x-api-key: ${PLACEHOLDER}`, 'Authorization: Bearer not-a-placeholder']);
    expect(r.status, r.stderr).toBe(200);
    const seen = h.upstream.requests.at(-1)?.headers;
    expect(seen?.['x-api-key']).toBe(h.canary);
    expect(seen?.authorization).toBe('Bearer not-a-placeholder');
  });

  it('Authorization: Bearer: the value goes there, rendered with that site’s format', async () => {
    const r = await post([`Authorization: Bearer ${PLACEHOLDER}`]);
    expect(r.status, r.stderr).toBe(200);
    const seen = h.upstream.requests.at(-1)?.headers;
    expect(seen?.authorization).toBe(`Bearer ${h.canary}`);
    expect(seen?.['x-api-key']).toBeUndefined();
  });

  it('outside both sites the placeholder travels verbatim, and the decision is audited as a site violation', async () => {
    const r = await post([`x-trace: ${PLACEHOLDER}`]);
    expect(r.status, r.stderr).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers['x-trace']).toBe(PLACEHOLDER);
    expect(h.auditRecords().some((e) => e.type === 'inject_decision' && e.reason === 'site_violation')).toBe(true);
  });

  it('the echo of the value never reaches the agent, whichever site carried it', async () => {
    for (const headers of [[`x-api-key: ${PLACEHOLDER}`], [`Authorization: Bearer ${PLACEHOLDER}`]]) {
      const r = await post(headers);
      expect(r.body).not.toContain(h.canary);
    }
    expect(h.auditText()).not.toContain(h.canary);
    expect(h.stdout() + h.stderr()).not.toContain(h.canary);
  });
});

describe("agent-vault-proxy's type: multi, a header site and a body site for one placeholder", () => {
  it('writes the value in the header and in the JSON body where each placeholder was found', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: [`X-Webhook-Token: ${WH_PH}`, 'Content-Type: application/json'], data: `{"token":"${WH_PH}"}` });
    expect(r.status, r.stderr).toBe(200);
    const seen = h.upstream.requests.at(-1);
    expect(seen?.headers['x-webhook-token']).toBe(WEBHOOK);
    expect(seen?.body.toString()).toBe(`{"token":"${WEBHOOK}"}`);
  });

  it('the body alone (no header) is still written; a body of another type is left as sent', async () => {
    await curlVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: ['Content-Type: application/json'], data: `{"token":"${WH_PH}"}` });
    expect(h.upstream.requests.at(-1)?.body.toString()).toBe(`{"token":"${WEBHOOK}"}`);
    await curlVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: ['Content-Type: text/plain'], data: `token=${WH_PH}` });
    expect(h.upstream.requests.at(-1)?.body.toString()).toBe(`token=${WH_PH}`);
    expect(h.auditText()).not.toContain(WEBHOOK);
  });
});
