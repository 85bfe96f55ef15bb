import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';

/*
 * Issue #27: the alerts nothing in a request's audit records can carry. credential_expiring (a client's token
 * within 14 days of its `expires`) and audit_failed (the audit log stops accepting writes: keyswap refuses what
 * would carry a secret, and says so out of band).
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function world(top: string, extra: Parameters<typeof startHarness>[0] = {}) {
  const ca = createTestCa();
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const receiver = await startWebhookReceiver(ca, secret);
  const h = await startHarness({
    testCa: ca,
    resolve: { 'hooks.example.test:443': `127.0.0.1:${receiver.port}` },
    secretValues: { HOOK_SECRET: secret },
    top: `alerts:\n  webhooks:\n    - { url: "https://hooks.example.test/k", signing_secret: HOOK_SECRET }\n${top}`,
    ...extra,
  });
  return { h, receiver };
}

describe('alerts keyswap raises on its own', () => {
  it('credential_expiring: a client token within 14 days of its expiry, once', async () => {
    const expires = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const { h, receiver } = await world(`clients:\n  ci: { token_sha256: "${createHash('sha256').update('t').digest('hex')}", secrets: [TEST_API_KEY], expires: "${expires}" }`);
    try {
      for (let i = 0; i < 100 && receiver.received.length === 0; i++) await sleep(100);
      await sleep(1500); // a second check finds the same expiry: told once
      expect(receiver.received.map((r) => [r.type, r.data])).toEqual([['credential_expiring', { credential: 'client ci', expires: new Date(Date.parse(expires)).toISOString(), reason: 'expiring' }]]);
    } finally {
      await h.close();
      await receiver.close();
    }
  });

  it('audit_failed: the audit log stops accepting writes', async () => {
    // As in security/fail-closed: a 1 MiB file-size limit; proxy_start fits after the pre-fill, the next record does not.
    const { h, receiver } = await world('', { fileSizeLimitBlocks: 2048, auditPrefillBytes: 2048 * 512 - 420 });
    try {
      expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(503);
      for (let i = 0; i < 100 && !receiver.received.some((r) => r.type === 'audit_failed'); i++) await sleep(100);
      expect(receiver.received.find((r) => r.type === 'audit_failed')?.data).toEqual({ reason: 'the audit log cannot be written: requests that would carry a secret are refused' });
    } finally {
      await h.close();
      await receiver.close();
    }
  });
});
