import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { createTestCa } from '../helpers/test-ca.js';
import { fire, replicaOf, restartReplica, startReplica, type Replica } from './replicas.js';

/*
 * Issue #29, item 3, minted credentials: three real keyswaps and a real redis-server. One token exchange serves all
 * three; a provider that rotates the refresh token at every exchange and refuses a used one never sees one twice,
 * however the replicas interleave, and the chain survives restarting all three.
 */
const PH_CC = 'cc-PLACEHOLDER-0123456789abcdef01234';
const PH_RT = 'rt-PLACEHOLDER-0123456789abcdef01234';
const CLIENT_ID = 'shared-client';
const CLIENT_SECRET = `cs-${randomBytes(10).toString('hex')}`;
const INITIAL_RT = `rt-initial-${randomBytes(10).toString('hex')}`;
const SHARED_KEY = randomBytes(48).toString('base64');

const minted = (name: string, type: string, extra: string): string => `
  ${name}:
    placeholder: "${name === 'CC' ? PH_CC : PH_RT}"
    inject:
      type: ${type}
      token_url: "https://auth.example.test/oauth2/token"
      client_id_secret: CLIENT_ID
      client_secret_secret: CLIENT_SECRET
${extra}
    bindings: [{ host: ${name === 'CC' ? 'api.example.test' : 'other.example.test'} }]
`;

describe('shared_state: minted credentials across three replicas', () => {
  let redis: RedisServer;
  let h: Harness;
  let auth: FakeAuthorities;
  let replicas: Replica[];
  const tokens = new Map([[CLIENT_ID, INITIAL_RT]]);
  const values = { CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN: INITIAL_RT, SHARED_KEY };

  beforeAll(async () => {
    redis = await startRedis();
    const testCa = createTestCa();
    auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [CLIENT_ID]: CLIENT_SECRET }, refresh: { tokens, rotate: true }, expiresInS: 70, delayMs: 200 });
    h = await startHarness({
      testCa,
      backend: 'backend: { type: file }',
      resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
      top: `shared_state: { redis: { url: "${redis.url}" }, key_secret: SHARED_KEY }`,
      // Served 6 s, so every request renews it ahead (within 60 s of its end): the replicas rotate it all the time.
      secrets: minted('CC', 'oauth2_client_credentials', '') + minted('RT', 'oauth2_refresh', '      refresh_token_secret: REFRESH_TOKEN\n      write_back_min_interval_seconds: 0\n      cache_ttl_max_seconds: 6'),
    });
    for (const [name, value] of Object.entries(values)) {
      const r = cli(['secret', 'set', name, '--config', path.join(h.dir, 'keyswap.yaml')], { input: value });
      expect(r.status, r.stderr).toBe(0);
    }
    // Started after the secrets are set: the harness's keyswap read an empty store, so it is restarted below.
    replicas = [replicaOf(h), await startReplica(h, 1, {}, values), await startReplica(h, 2, {}, values)];
  }, 90_000);
  afterAll(async () => {
    // Every replica a test started or restarted (the harness's own, once restarted, has a process of its own).
    await Promise.all(replicas.map((r) => r.process?.stop()));
    await h?.close();
    await auth?.close();
    await redis?.close();
  });

  it('one client-credentials exchange for thirty requests at once over three replicas; Redis holds it sealed', async () => {
    const answers = await fire(replicas, 30, 'https://api.example.test/v1/cc', { authorization: `Bearer ${PH_CC}` });
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(auth.calls.filter((c) => c.endpoint === 'oauth2')).toHaveLength(1);
    const sent = new Set(h.upstream.requests.slice(-30).map((r) => String(r.headers.authorization)));
    expect(sent.size).toBe(1);
    const dump = redis.cli('--scan').trim().split('\n').map((k) => redis.cli('GET', k)).join('\n');
    for (const t of auth.issued) expect(dump.includes(t)).toBe(false);
  }, 60_000);

  it('a refresh token the provider rotates at every exchange is never sent twice, and the chain survives restarting all three', async () => {
    const rotationsBefore = auth.calls.length;
    for (let wave = 0; wave < 8; wave++) {
      const answers = await fire(replicas, 9, 'https://other.example.test/v1/rt', { authorization: `Bearer ${PH_RT}` });
      if (answers.some((a) => a.status !== 200)) console.log(wave, JSON.stringify(replicas.map((r) => r.auditRecords().filter((e) => e.type === 'token_exchange' || e.type === 'deny').slice(-6))), replicas.map((r) => r.process?.stderr().slice(-1500) ?? h.stderr().slice(-1500)));
      expect(answers.map((a) => a.status), `wave ${wave}`).toEqual(Array(9).fill(200));
      await new Promise((r) => setTimeout(r, 250));
    }
    const exchanges = auth.calls.length - rotationsBefore;
    // Enough rotations, spread over the replicas, for reuse to have been possible.
    expect(exchanges).toBeGreaterThanOrEqual(8);
    const minters = replicas.map((r) => r.auditRecords().filter((e) => e.type === 'token_exchange' && e.minter === 'oauth2_refresh' && e.outcome === 'minted').length);
    expect(minters.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    // The provider refuses a used refresh token (invalid_grant): no replica's exchange ever failed.
    for (const r of replicas) expect(r.auditRecords().filter((e) => e.type === 'token_exchange' && e.outcome === 'failed')).toEqual([]);

    // All three restarted: each reads the newest refresh token (from Redis, or from its backend where newer).
    for (let i = 0; i < replicas.length; i++) replicas[i] = await restartReplica(h, replicas[i] as Replica);
    await new Promise((r) => setTimeout(r, 6_500)); // every cached access token has run out
    const after = await fire(replicas, 9, 'https://other.example.test/v1/rt', { authorization: `Bearer ${PH_RT}` });
    if (after.some((a) => a.status !== 200)) console.log('AFTER', after[0]?.body, JSON.stringify(replicas.map((r) => r.auditRecords().filter((e) => e.type === 'token_exchange' || e.type === 'deny').slice(-3))), replicas.map((r) => r.process?.stderr().slice(-800)));
    expect(after.map((a) => a.status)).toEqual(Array(9).fill(200));
    for (const r of replicas) expect(r.auditRecords().filter((e) => e.type === 'token_exchange' && e.outcome === 'failed')).toEqual([]);
    // Nothing the provider issued is in any replica's log or audit, or in Redis in the clear.
    const dump = redis.cli('--scan').trim().split('\n').map((k) => `${redis.cli('GET', k)}${redis.cli('LRANGE', k, '0', '-1')}`).join('\n');
    const logs = replicas.map((r) => JSON.stringify(r.auditRecords()) + (r.process?.stderr() ?? h.stderr())).join('\n');
    for (const t of [...auth.issued, INITIAL_RT, CLIENT_SECRET, SHARED_KEY]) {
      expect(dump.includes(t)).toBe(false);
      expect(logs.includes(t)).toBe(false);
    }
  }, 90_000);
});
