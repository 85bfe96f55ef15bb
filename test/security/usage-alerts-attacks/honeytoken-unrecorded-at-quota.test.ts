import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';

/*
 * (Found by an outside attack on issue #27; fixed by leaving honeytokens out of quotas.)
 * A honeytoken aimed where its binding allows is an injection: pipeline.ts:82 admits it under `usage:` quotas
 * (a quota's `secrets` default is all), and when the quota is exhausted admitUse throws usage_limit_reached
 * (pipeline.ts:171) before decisionEvents() (pipeline.ts:118) records `honeytoken_triggered`. The refusal is
 * audited only as `deny usage_limit_reached`: no honeytoken record, so no `honeytoken` alert. A compromised agent
 * that has spent its quota (or waits for a shared one to run out) tries every placeholder it holds undetected.
 */

const HONEY = 'sk-PLACEHOLDER-QUOTAHONEYQUOTAHONEY01';

describe('attack27: a honeytoken used once the quota is exhausted', () => {
  it('is still recorded as honeytoken_triggered', async () => {
    const h = await startHarness({
      secretValues: { HONEY: 'honey-value' },
      top: 'usage:\n  all: { limit: 1, period: day }',
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  HONEY:
    placeholder: "${HONEY}"
    honeytoken: true
    inject: { header: X-Honey, format: "{HONEY}" }
    bindings: [ { host: api.example.test } ]
`,
    });
    try {
      expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
      const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`X-Honey: ${HONEY}`] });
      // A honeytoken is not a use: it is not counted nor refused by the quota, and it is recorded.
      expect(r.status).toBe(200);
      expect(h.auditRecords().filter((x) => x.type === 'honeytoken_triggered' && x.secret_name === 'HONEY')).toHaveLength(1);
    } finally {
      await h.close();
    }
  }, 30_000);
});
