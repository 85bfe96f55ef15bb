import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

/*
 * Issue #27, item 2 (webhooks): alerts delivered per Standard Webhooks to a real HTTPS receiver that verifies them
 * with the standardwebhooks package. A quota of 5 with warn_at 60%: exactly one usage_warning and one
 * usage_exhausted; a honeytoken and a destination violation each alert; the receiver down for a while: delivered
 * after it returns, once per id; every attempt audited; no secret or placeholder in any payload.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HONEY = 'sk-PLACEHOLDER-HONEYHONEYHONEYHONEY01';
const MISSING = 'gh-PLACEHOLDER-ALERTSMISSINGVALUE0001';

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('alerts over Standard Webhooks', () => {
  it('quota crossings once each, a honeytoken, a violation, a backend failure delivered after the receiver returns; nothing secret in any payload', async () => {
    const ca = createTestCa();
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const receiver = await startWebhookReceiver(ca, secret);
    const h = await startHarness({
      testCa: ca,
      resolve: { 'hooks.example.test:443': `127.0.0.1:${receiver.port}` },
      secretValues: { HOOK_SECRET: secret, HONEY: 'honey-value-never-sent' },
      top: `usage:
  daily: { secrets: [TEST_API_KEY], limit: 5, period: day, warn_at: 60% }
alerts:
  webhooks:
    - { url: "https://hooks.example.test/keyswap", signing_secret: HOOK_SECRET }`,
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test, paths: ["/v1/**"] } ]
  HONEY:
    placeholder: "${HONEY}"
    honeytoken: true
    inject: { header: X-Honey, format: "{HONEY}" }
    bindings: [ { host: api.example.test } ]
  MISSING:
    placeholder: "${MISSING}"
    inject: { header: X-Missing, format: "{MISSING}" }
    bindings: [ { host: other.example.test } ]
`,
    });
    const get = (headers: string[], url = 'https://api.example.test/v1/echo'): ReturnType<typeof curlVia> => curlVia(h, url, { headers });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await get([`Authorization: Bearer ${PLACEHOLDER}`])).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      await until('the quota alerts', () => receiver.received.filter((r) => r.type.startsWith('usage_')).length >= 2);
      await get([`X-Honey: ${HONEY}`]);
      await get([`Authorization: Bearer ${PLACEHOLDER}`], 'https://api.example.test/other/path'); // outside the binding's paths
      await until('the honeytoken and violation alerts', () => ['honeytoken', 'violation'].every((t) => receiver.received.some((r) => r.type === t)));

      // The receiver goes down; a backend failure (no value for MISSING) is raised meanwhile and retried.
      receiver.down = true;
      expect((await get([`X-Missing: ${MISSING}`], 'https://other.example.test/v1/echo')).status).toBe(503);
      await until('a failed attempt', () => h.auditRecords().some((r) => r.type === 'alert_delivery' && r.outcome === 'retrying'));
      await sleep(2_500);
      receiver.down = false;
      await until('the backend_failed alert after the receiver returned', () => receiver.received.some((r) => r.type === 'backend_failed'));

      const byType = (t: string): number => receiver.received.filter((r) => r.type === t).length;
      expect({ warning: byType('usage_warning'), exhausted: byType('usage_exhausted') }).toEqual({ warning: 1, exhausted: 1 });
      expect(receiver.received.find((r) => r.type === 'usage_warning')?.data).toEqual({ quota: 'daily', used: 3, limit: 5, period: 'day' });
      expect(receiver.received.find((r) => r.type === 'violation')?.data).toMatchObject({ secret_name: 'TEST_API_KEY', reason: 'binding_scope_violation', destination: { host: 'api.example.test', method: 'GET' } });
      expect(receiver.received.find((r) => r.type === 'honeytoken')?.data).toMatchObject({ secret_name: 'HONEY' });
      expect(receiver.rejected).toEqual([]);
      // Once per id: the retried alert kept its id; the receiver saw it more than once, kept it once.
      const retried = receiver.received.find((r) => r.type === 'backend_failed') as { id: string };
      expect(receiver.attempts.get(retried.id)).toBeGreaterThan(1);
      expect(new Set(receiver.received.map((r) => r.id)).size).toBe(receiver.received.length);
      // Each attempt is audited (lazily: with the next fsync, or within moments).
      await until('every delivery audited', () => h.auditRecords().filter((r) => r.type === 'alert_delivery' && r.outcome === 'delivered').length === receiver.received.length);
      for (const r of receiver.received) {
        for (const forbidden of [h.canary, PLACEHOLDER, HONEY, MISSING, 'honey-value-never-sent', secret]) expect(r.raw).not.toContain(forbidden);
      }
      // A receiver's checks: a tampered body, a stale timestamp, and the signature itself with the library.
      const sample = receiver.received[0] as { raw: string; headers: Record<string, string> };
      const verifier = new Webhook(secret);
      expect(() => verifier.verify(sample.raw.replace('"type"', '"typ\\u0065"'), sample.headers)).toThrow();
      expect(() => verifier.verify(sample.raw, { ...sample.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) })).toThrow();

      // keyswap alerts test and doctor: a signed sample each, verified by the receiver; exit 0.
      const before = receiver.received.length;
      const test = await cliCollect(['alerts', 'test', '--event', 'honeytoken', '--config', `${h.dir}/keyswap.yaml`], { env: { KEYSWAP_SECRET_HOOK_SECRET: secret } });
      expect(test.stdout, test.stderr).toMatch(/^ok webhook hooks\.example\.test accepted a signed honeytoken sample \(HTTP 204\)/);
      expect(receiver.received.at(-1)?.data).toEqual({ sample: true, reason: 'keyswap alerts test' });
      const doctor = await cliCollect(['doctor', '--config', `${h.dir}/keyswap.yaml`], { env: { KEYSWAP_SECRET_HOOK_SECRET: secret, KEYSWAP_SECRET_TEST_API_KEY: 'x', KEYSWAP_SECRET_HONEY: 'y', KEYSWAP_SECRET_MISSING: 'z' } });
      expect(doctor.stdout).toMatch(/ok webhook hooks\.example\.test accepted a signed usage_warning sample/);
      expect(receiver.received.length).toBe(before + 2);
    } finally {
      await h.close();
      await receiver.close();
    }
  });
});
