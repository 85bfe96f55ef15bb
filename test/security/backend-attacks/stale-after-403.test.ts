import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { startFakeVault } from '../../helpers/fake-vault.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * attack26: with cache.max_stale_seconds > 0, Vault's 403 ("the policy speaking", docs/backends.md) is a
 * BackendUnavailable like an outage, so the cache keeps serving the revoked value past its TTL.
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('attack26: stale serving after a policy change', () => {
  it('a Vault policy that now refuses the path (403 twice) fails closed even with max_stale_seconds', async () => {
    const ca = createTestCa();
    const vault = await startFakeVault(ca);
    const w = tempWorld('a26-stale');
    vault.put('secret', 'keyswap/TEST_API_KEY', { value: 'revoked-by-policy' });
    const token = vault.token({ readable: ['secret/'], ttlSeconds: 3600, maxTtlSeconds: 7200, renewable: true });
    const h = await startHarness({
      testCa: ca,
      backend: `backend: { type: vault, config: { address: "${vault.url}", ca_file: ${w.write('ca.pem', ca.certPem)}, prefix: "keyswap/", auth: { method: token, token_file: ${w.write('t', token, 0o600)} } } }`,
      top: 'cache: { ttl_seconds: 1, jitter_seconds: 0, max_stale_seconds: 600 }',
    });
    try {
      const get = (): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect((await get()).status).toBe(200);
      vault.deny('secret/data/keyswap/TEST_API_KEY');
      await sleep(1200);
      const sent = h.upstream.requests.length;
      const after = await get();
      // Vault said 403 twice (a fresh login in between): the policy no longer lets keyswap read it.
      expect({ status: after.status, upstreamGot: h.upstream.requests.slice(sent).map((r) => r.headers.authorization) }, 'the revoked value was served stale after Vault refused it').toEqual({ status: 503, upstreamGot: [] });
      expect(h.stdout() + h.stderr()).toMatch(/permission denied reading secret\/data\/keyswap\/TEST_API_KEY/);
    } finally {
      await h.close();
      await vault.close();
    }
  });
});
