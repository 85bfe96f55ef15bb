import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { fire, replicaOf, startReplica, type Replica } from '../../shared/replicas.js';

/*
 * Attack on `on_unavailable: local` quotas (src/shared/quotas.ts admit / #local / rejoin). One slow Redis command
 * (1 s commandTimeout) while the connection stays up makes admit() fall back to #local(), which builds this
 * replica's alone-meter from the count it knew *then*. Nothing clears it: only a connection state change calls
 * rejoin(), and a timed-out command is no state change. When Redis really goes away later, the replica reuses that
 * stale meter instead of starting from its share of the last count it saw (as docs/configuration.md says), so it
 * admits its whole share again on top of a quota Redis had already exhausted.
 */
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
`;

describe('shared_state local fallback: a stale alone-meter left by one slow command', () => {
  let redis: RedisServer;
  let h: Harness;
  let replicas: Replica[];
  beforeAll(async () => {
    redis = await startRedis();
    h = await startHarness({
      secrets: SECRETS,
      top: `shared_state: { redis: { url: "${redis.url}" }, on_unavailable: local, replicas: 2 }\nusage:\n  daily: { secrets: [TEST_API_KEY], limit: 10, period: day }`,
    });
    replicas = [replicaOf(h), await startReplica(h, 1)];
  }, 60_000);
  afterAll(async () => {
    await replicas[1]?.process?.stop();
    await h?.close();
    await redis?.close();
  });

  it('a quota of 10 exhausted in Redis lets no more requests out after Redis goes, even after an earlier slow command', async () => {
    const url = 'https://api.example.test/v1/q';
    const headers = { authorization: `Bearer ${PLACEHOLDER}` };
    const a = replicas[0] as Replica;
    const before = h.upstream.requests.length;
    // One use through Redis first: the Lua script is loaded, so the stalled command below still runs once Redis resumes.
    expect((await fire([a], 1, url, headers)).map((x) => x.status)).toEqual([200]);
    // Redis stalls 1.5 s (a fork for BGSAVE, a slow command, a failover pause): the connection stays up.
    redis.cli('CLIENT', 'PAUSE', '1500');
    expect((await fire([a], 1, url, headers)).map((x) => x.status)).toEqual([200]);
    await new Promise((r) => setTimeout(r, 2_000));
    // Redis answers again; the quota is used up through Redis (10 in all, the stalled one included).
    await fire(replicas, 20, url, headers);
    const phase2 = h.upstream.requests.length - before;
    // Every replica has read the shared count (10) before Redis goes.
    await new Promise((r) => setTimeout(r, 2_500));
    const redisCount = redis.cli('--scan', '--pattern', 'keyswap:quota:*').trim().split('\n').filter((k) => !k.includes(':told:')).map((k) => redis.cli('GET', k).trim()).join(',');
    await redis.kill();
    expect(await waitFor(() => replicas.every((r) => r.auditRecords().some((e) => e.type === 'shared_state' && e.state === 'unavailable')), 5_000)).toBe(true);
    // Each replica's share of the last count it saw (10 / 2 = 5) is its whole share (5): nothing more goes out.
    const alone = await fire([a], 10, url, headers);
    const total = h.upstream.requests.length - before;
    console.log(`quota 10: ${phase2} upstream while Redis answered, ${total - phase2} more after it went (${alone.map((x) => x.status).join(',')}); Redis count was ${redisCount}`);
    expect(total).toBeLessThanOrEqual(10);
  }, 60_000);
});
