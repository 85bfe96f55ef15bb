import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';

/*
 * alerts.email.smtp.host is any string (schema.ts: z.string().min(1)); the email sink's queue id is
 * `smtp://${host}:${port}`, and Alerter.#attempt runs `new URL(item.url)` outside its try (alerter.ts:120). With an
 * IPv6 literal host (`::1`, a local relay) that URL throws, the attempt's promise rejects, nobody handles it
 * (`void this.#attempt(item).finally(...)`, alerter.ts:112) and Node exits on the unhandled rejection. Any agent
 * can raise a subscribed alert at will (here: a honeytoken) and so kill keyswap; the queued item is retried at the
 * next start and kills it again.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HONEY = 'sk-PLACEHOLDER-IPV6HONEYIPV6HONEY0001';

describe('attack27: an email sink whose host is an IPv6 literal', () => {
  it('an agent-raised alert does not crash keyswap', async () => {
    const h = await startHarness({
      secretValues: { HONEY: 'honey-value' },
      top: `alerts:
  email:
    smtp: { host: "::1", port: 2525 }
    from: keyswap@example.test
    to: [oncall@example.test]
    events: [honeytoken]`,
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
      await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`X-Honey: ${HONEY}`] });
      await sleep(1500);
      expect(h.child.exitCode, h.stderr().slice(-600)).toBeNull();
      const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(r.status).toBe(200);
    } finally {
      await h.close();
    }
  }, 30_000);
});
