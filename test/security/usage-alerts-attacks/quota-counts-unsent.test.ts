import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';

/*
 * docs/configuration.md `usage`: "A request is counted when it goes upstream ... one refused or abandoned before
 * that is never counted". pipeline.ts:122 commits the use before forward() (pipeline.ts:158-159) has even dialled
 * the upstream (HTTP/1.1; an HTTP/2 agent's session is opened before, pipeline.ts:109-111): a request refused by keyswap because the upstream's certificate is not trusted (or it refused the
 * connection, or did not resolve) sent nothing, yet is counted. An upstream outage (or a MITM on the path that
 * keyswap correctly refuses) burns the quota with zero requests delivered, and a shared quota is then exhausted
 * for every other agent until the period ends.
 */

describe('attack27: a request that never reached the upstream', () => {
  it('is not counted against the quota', async () => {
    const h = await startHarness({
      top: 'usage:\n  q: { secrets: [TEST_API_KEY], limit: 1, period: day }',
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: untrusted.example.test }, { host: api.example.test } ]
`,
    });
    try {
      const before = h.untrustedUpstream.requests.length;
      const first = await curlVia(h, 'https://untrusted.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--http1.1'] });
      expect(first.status).toBe(502);
      expect(h.untrustedUpstream.requests.length).toBe(before); // nothing went out
      // The quota's one use is still there for a request that does go out.
      const second = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(second.status).toBe(200);
    } finally {
      await h.close();
    }
  }, 30_000);
});
