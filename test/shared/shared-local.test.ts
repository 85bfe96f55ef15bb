import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodOf } from '../../src/usage/index.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { fire, replicaOf, startReplica, type Replica } from './replicas.js';

/*
 * Issue #29, item 3, `on_unavailable: local`: with Redis gone each of three replicas enforces a quota of 90 at
 * 30 on its own (said in the log), and what it counted alone is added to Redis's count when Redis is back.
 */
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
`;

describe('shared_state with on_unavailable: local', () => {
  let redis: RedisServer;
  let h: Harness;
  let replicas: Replica[];
  beforeAll(async () => {
    redis = await startRedis();
    h = await startHarness({
      secrets: SECRETS,
      top: `shared_state: { redis: { url: "${redis.url}" }, on_unavailable: local, replicas: 3 }\nusage:\n  daily: { secrets: [TEST_API_KEY], limit: 90, period: day }`,
    });
    replicas = [replicaOf(h), await startReplica(h, 1), await startReplica(h, 2)];
  }, 60_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.process?.stop()));
    await h?.close();
    await redis?.close();
  });

  it('Redis gone: each replica allows its share (90 ÷ 3 = 30, less its share of what was used); the counts rejoin Redis', async () => {
    const url = 'https://api.example.test/v1/q';
    const headers = { authorization: `Bearer ${PLACEHOLDER}` };
    // 12 used while Redis answers: each replica's share of that is 4.
    expect((await fire(replicas, 12, url, headers)).every((a) => a.status === 200)).toBe(true);
    // Every replica has read the shared count (refreshed every 2 s) before Redis goes.
    await new Promise((r) => setTimeout(r, 2_500));
    await redis.kill();
    expect(await waitFor(() => replicas.every((r) => r.auditRecords().some((e) => e.type === 'shared_state' && e.state === 'unavailable' && e.fallback === 'local')), 5_000)).toBe(true);
    const before = h.upstream.requests.length;
    const alone = await fire([replicas[0] as Replica], 40, url, headers);
    expect(alone.filter((a) => a.status === 200)).toHaveLength(26);
    expect(alone.filter((a) => a.status === 429)).toHaveLength(14);
    expect(h.upstream.requests.length - before).toBe(26);
    expect(h.stderr()).toContain('each quota is enforced here at limit ÷ 3 (on_unavailable: local)');

    await redis.start();
    const key = `keyswap:quota:daily:${periodOf('day', Date.now()).startMs}`;
    // Redis came back empty (no persistence here): what replica 0 counted alone (26) is added back, once.
    expect(await waitFor(() => redis.cli('GET', key).trim() === '26', 10_000)).toBe(true);
  }, 60_000);
});
