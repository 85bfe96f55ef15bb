import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodOf } from '../../src/usage/index.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { fire, replicaOf, startReplica, type Replica } from './replicas.js';

/*
 * Issue #29, item 3: three real keyswaps sharing a real redis-server. A `rate:` limit and a `usage:` quota of 100
 * hold for the three together under concurrency (exactly 100 go upstream), and Redis killed mid-run refuses what
 * needs it (503 shared_state_unavailable, nothing sent) until it is back.
 */
const PH_RATE = 'sk-PLACEHOLDER-RATE-0123456789abcdef0';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  RATED_KEY:
    placeholder: "${PH_RATE}"
    inject: { header: X-Rated, format: "{RATED_KEY}" }
    bindings: [ { host: other.example.test, rate: "100/hour" } ]
`;

describe('shared_state: limits across three replicas', () => {
  let redis: RedisServer;
  let h: Harness;
  let replicas: Replica[];
  beforeAll(async () => {
    redis = await startRedis({ password: 'redis-test-password-0123456789' });
    h = await startHarness({
      secrets: SECRETS,
      secretValues: { RATED_KEY: 'rated-real-value-0123456789', REDIS_PASSWORD: 'redis-test-password-0123456789' },
      top: `shared_state: { redis: { url: "${redis.url}", password_secret: REDIS_PASSWORD } }\nusage:\n  daily: { secrets: [TEST_API_KEY], limit: 100, period: day }`,
    });
    const env = { KEYSWAP_SECRET_RATED_KEY: 'rated-real-value-0123456789', KEYSWAP_SECRET_REDIS_PASSWORD: 'redis-test-password-0123456789' };
    replicas = [replicaOf(h), await startReplica(h, 1, env), await startReplica(h, 2, env)];
  }, 60_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.process?.stop()));
    await h?.close();
    await redis?.close();
  });

  it('a quota of 100: 300 requests at once over three replicas, exactly 100 reach the upstream', async () => {
    const before = h.upstream.requests.length;
    const answers = await fire(replicas, 300, 'https://api.example.test/v1/q', { authorization: `Bearer ${PLACEHOLDER}` });
    expect(answers.filter((a) => a.status === 200)).toHaveLength(100);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(200);
    expect(h.upstream.requests.length - before).toBe(100);
    expect(redis.cli('GET', `keyswap:quota:daily:${periodOf('day', Date.now()).startMs}`).trim()).toBe('100');
  }, 60_000);

  it('a rate of 100/hour: 300 requests at once over three replicas, exactly 100 reach the upstream', async () => {
    const before = h.upstream.requests.length;
    const answers = await fire(replicas, 300, 'https://other.example.test/v1/r', { 'x-rated': PH_RATE });
    expect(answers.filter((a) => a.status === 200)).toHaveLength(100);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(200);
    expect(h.upstream.requests.length - before).toBe(100);
  }, 60_000);

  it('Redis killed: requests that need it get 503 shared_state_unavailable with nothing sent; back once it is', async () => {
    await redis.kill();
    // Each replica notices the closed connection at once (audited).
    expect(await waitFor(() => replicas.every((r) => r.auditRecords().some((e) => e.type === 'shared_state' && e.state === 'unavailable')), 5_000)).toBe(true);
    const before = h.upstream.requests.length;
    const answers = await fire(replicas, 9, 'https://other.example.test/v1/r', { 'x-rated': PH_RATE });
    expect(answers.map((a) => a.status)).toEqual(Array(9).fill(503));
    expect(answers[0]?.body).toBe('keyswap: the state replicas share (rate limits, quotas, minted credentials) is unavailable; nothing was sent\n');
    expect(h.upstream.requests.length).toBe(before);
    // A request that needs no shared state is served as ever.
    await redis.start();
    expect(await waitFor(() => replicas.every((r) => r.auditRecords().filter((e) => e.type === 'shared_state').at(-1)?.state === 'available'), 10_000)).toBe(true);
    const again = await fire(replicas, 3, 'https://other.example.test/v1/r', { 'x-rated': PH_RATE });
    // A restarted Redis without persistence starts its buckets full: the three go through.
    expect(again.map((a) => a.status)).toEqual([200, 200, 200]);
    for (const r of replicas) expect(r.auditRecords().filter((e) => e.type === 'deny' && e.reason === 'shared_state_unavailable').length).toBeGreaterThan(0);
  }, 60_000);
});
