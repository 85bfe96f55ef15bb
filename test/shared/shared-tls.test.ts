import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { createTestCa } from '../helpers/test-ca.js';

/*
 * Issue #29, item 3: shared_state over TLS (rediss://), as the gateway overlay runs it: keyswap verifies Redis's
 * certificate against the configured CA and name, and authenticates with the password from its backend. A Redis
 * whose certificate keyswap does not trust is never sent the password: requests that need it are refused.
 */
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test, rate: "100/hour" } ]
`;
const PASSWORD = 'redis-tls-password-0123456789abcdef';

describe('shared_state over TLS', () => {
  const started: (Harness | RedisServer)[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const s of started.reverse()) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function keyswapWith(redisCa: string, redis: RedisServer): Promise<Harness> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-redis-ca-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'redis-ca.pem'), redisCa);
    const h = await startHarness({
      secrets: SECRETS,
      secretValues: { REDIS_PASSWORD: PASSWORD },
      top: `shared_state: { redis: { url: "${redis.url}", password_secret: REDIS_PASSWORD, tls: { ca_file: ${dir}/redis-ca.pem, server_name: redis.example.test } } }`,
    });
    started.push(h);
    return h;
  }

  it('a Redis with a certificate keyswap trusts: shared limits work, the password never in any output', async () => {
    const ca = createTestCa('redis CA');
    const redis = await startRedis({ password: PASSWORD, tls: ca.issue(['redis.example.test']) });
    started.push(redis);
    const h = await keyswapWith(ca.certPem, redis);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'shared_state'), 5_000)).toBe(true);
    const r = await curlVia(h, 'https://api.example.test/v1/t', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status).toBe(200);
    expect(h.auditRecords().filter((e) => e.type === 'shared_state').at(-1)).toMatchObject({ state: 'available' });
    expect(h.stderr() + h.stdout() + h.auditText()).not.toContain(PASSWORD);
  }, 30_000);

  it('a Redis whose certificate another CA signed is never trusted: 503 shared_state_unavailable, nothing sent', async () => {
    const ours = createTestCa('redis CA');
    const theirs = createTestCa('impostor CA');
    const redis = await startRedis({ password: PASSWORD, tls: theirs.issue(['redis.example.test']) });
    started.push(redis);
    const h = await keyswapWith(ours.certPem, redis);
    const before = h.upstream.requests.length;
    const r = await curlVia(h, 'https://api.example.test/v1/t', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status).toBe(503);
    expect(h.upstream.requests.length).toBe(before);
    expect(h.auditRecords().filter((e) => e.type === 'shared_state').at(-1)).toMatchObject({ state: 'unavailable' });
  }, 30_000);
});
