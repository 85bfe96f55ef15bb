import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../../helpers/cli.js';
import { startFakeAuthorities, type FakeAuthorities } from '../../helpers/fake-authorities.js';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { startReplica, type Replica } from '../../shared/replicas.js';

/*
 * Attack on shared_state's rotated refresh tokens (src/shared/mint-sharing.ts currentRefreshToken, src/mint/
 * mint-service.ts #mint). Two replicas share one backend (the file store, at one path) and one Redis. The refresh
 * token a replica sends is `stored`, read through its SecretCache (TTL 300 s), unless Redis holds a newer one that
 * `stored` was rotated from. Redis is the only thing that tells a replica its cached copy is stale: when Redis loses
 * the rotation (restart without persistence, the last second of appendonly everysec, eviction, FLUSHDB, or anyone
 * who can write Redis deleting or replaying `refresh:<id>`), the replica sends its cached token, which another
 * replica already spent. The provider sees a used refresh token: OAuth 2.1 reuse detection revokes the whole grant.
 */
const PH_RT = 'rt-PLACEHOLDER-0123456789abcdef01234';
const CLIENT_ID = 'replay-client';
const CLIENT_SECRET = `cs-${randomBytes(10).toString('hex')}`;
const INITIAL_RT = `rt-initial-${randomBytes(10).toString('hex')}`;
const SHARED_KEY = randomBytes(48).toString('base64');

const SECRETS = `
  RT:
    placeholder: "${PH_RT}"
    inject:
      type: oauth2_refresh
      token_url: "https://auth.example.test/oauth2/token"
      client_id_secret: CLIENT_ID
      client_secret_secret: CLIENT_SECRET
      refresh_token_secret: REFRESH_TOKEN
      write_back_min_interval_seconds: 0
      cache_ttl_max_seconds: 6
    bindings: [{ host: other.example.test }]
`;

async function via(r: Replica): Promise<{ status: number; body: string }> {
  const agent = new ProxyAgent({ uri: r.proxyUrl, requestTls: { ca: r.caPem } });
  try {
    const res = await request('https://other.example.test/v1/rt', { dispatcher: agent, headers: { authorization: `Bearer ${PH_RT}` } });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await agent.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const failed = (r: Replica): Record<string, unknown>[] => r.auditRecords().filter((e) => e.type === 'token_exchange' && e.outcome === 'failed');
const minted = (r: Replica): number => r.auditRecords().filter((e) => e.type === 'token_exchange' && e.outcome === 'minted').length;

describe('shared_state: a rotated refresh token is sent again once Redis forgets the rotation', () => {
  let redis: RedisServer;
  let h: Harness;
  let auth: FakeAuthorities;
  let a: Replica;
  let b: Replica;
  const tokens = new Map([[CLIENT_ID, INITIAL_RT]]);

  beforeAll(async () => {
    redis = await startRedis();
    const testCa = createTestCa();
    auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [CLIENT_ID]: CLIENT_SECRET }, refresh: { tokens, rotate: true }, expiresInS: 3600 });
    h = await startHarness({
      testCa,
      // One store for every replica (as Vault or a cloud secret manager would be), at a path relative to the configs.
      backend: 'backend: { type: file, config: { path: ./shared-store/secrets.enc } }',
      resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
      top: `cache: { ttl_seconds: 300 }\nshared_state: { redis: { url: "${redis.url}" }, key_secret: SHARED_KEY }`,
      secrets: SECRETS,
    });
    for (const [name, value] of Object.entries({ CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN: INITIAL_RT, SHARED_KEY })) {
      const r = cli(['secret', 'set', name, '--config', path.join(h.dir, 'keyswap.yaml')], { input: value });
      expect(r.status, r.stderr).toBe(0);
    }
    // Two replicas on the shared store (the harness's own keyswap is left idle).
    a = await startReplica(h, 1);
    b = await startReplica(h, 2);
  }, 90_000);
  let c: Replica | undefined;
  afterAll(async () => {
    await c?.process?.stop();
    await a?.process?.stop();
    await b?.process?.stop();
    await h?.close();
    await auth?.close();
    await redis?.close();
  });

  it('Redis restarted (no persistence): the replica with a cached, already-rotated refresh token sends it again', async () => {
    // A exchanges T0 -> T1 (Redis: newest T1, superseded [T0]; store: T1).
    expect((await via(a)).status).toBe(200);
    await sleep(6_500); // A's access token is past its use-by: every request below is a cache miss
    // B reads T1 from the store (its cache keeps it 300 s), exchanges T1 -> T2.
    expect((await via(b)).status).toBe(200);
    await sleep(6_500);
    // A's cache still says T1: Redis says T1 was rotated from, so A sends T2 -> T3. The protection works here.
    expect((await via(a)).status).toBe(200);
    expect([minted(a), minted(b)]).toEqual([2, 1]);
    expect([...failed(a), ...failed(b)]).toEqual([]);

    // Redis restarts without persistence (the documented advice asks for persistence only for quota counts).
    await redis.kill();
    await redis.start();
    expect(await waitFor(() => [a, b].every((r) => r.auditRecords().filter((e) => e.type === 'shared_state').at(-1)?.state === 'available'), 10_000)).toBe(true);
    await sleep(6_500); // B's access token is past its use-by
    // B's SecretCache still holds T2 (spent by A above); nothing in Redis says so any more.
    const answer = await via(b);
    const reuse = failed(b);
    if (reuse.length > 0) console.log('B sent a spent refresh token:', JSON.stringify(reuse), answer.status, answer.body.trim());
    expect(reuse).toEqual([]);
    expect(answer.status).toBe(200);
  }, 90_000);

  it('anyone who can write Redis (no key_secret) replays an older sealed refresh token: a replica sends a spent one', async () => {
    await sleep(6_500);
    expect((await via(a)).status).toBe(200); // A: stored -> T4 (Redis newest T4)
    // C starts and is served A's shared access token; its SecretCache now holds T4 for 300 s.
    c = await startReplica(h, 3);
    expect((await via(c)).status).toBe(200);
    await sleep(6_500);
    expect((await via(a)).status).toBe(200); // T4 -> T5
    const [valueKey] = redis.cli('--scan', '--pattern', 'keyswap:refresh:*').trim().split('\n').filter((k) => !k.endsWith(':superseded'));
    const sealedT5 = redis.cli('GET', valueKey as string).trim();
    await sleep(6_500);
    expect((await via(a)).status).toBe(200); // T5 -> T6 (Redis newest T6, superseded [T5, T4, ...])
    const failedBefore = failed(c).length;
    // The attacker puts the older sealed value back: it opens (same key, same associated data), nothing says it is old.
    redis.cli('SET', valueKey as string, sealedT5);
    await sleep(6_500);
    const answer = await via(c);
    const reuse = failed(c).slice(failedBefore);
    if (reuse.length > 0) console.log('C sent the replayed, spent refresh token:', JSON.stringify(reuse.map((e) => e.reason)), answer.status);
    expect(reuse).toEqual([]);
    expect(answer.status).toBe(200);
  }, 120_000);
});
