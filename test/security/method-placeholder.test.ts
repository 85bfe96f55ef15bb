import { describe, expect, it } from 'vitest';
import { h2Request, h2Via } from '../helpers/h2-client.js';
import { startHarness } from '../helpers/harness.js';

/*
 * An outside review of issue #27 asked: an HTTP/2 `:method` may be any upper-case token, so an agent can send a
 * placeholder as its method; the audit record (and an alert built from it) would hold the stand-in. The method is
 * masked as path segments are.
 */
const UPPER = 'GH-PLACEHOLDER-METHODMETHODMETHOD0001';

describe('a placeholder sent as the method', () => {
  it('never reaches the audit file', async () => {
    const h = await startHarness({
      secretValues: { UPPER_KEY: 'upper-value' },
      secrets: `
  UPPER_KEY:
    placeholder: "${UPPER}"
    inject: { header: X-Key, format: "{UPPER_KEY}" }
    bindings: [ { host: api.example.test } ]
`,
    });
    try {
      const session = await h2Via(h, 'api.example.test');
      await h2Request(session, { ':method': UPPER, ':path': '/v1/echo' }).catch(() => null);
      session.close();
      await new Promise((r) => setTimeout(r, 300));
      expect(h.auditText()).not.toContain(UPPER);
      expect(h.auditRecords().some((r) => r.method === '*')).toBe(true);
    } finally {
      await h.close();
    }
  });
});
