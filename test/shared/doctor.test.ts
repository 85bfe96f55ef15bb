import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/* Issue #29, item 3: `keyswap doctor` checks shared_state — the key every replica must hold, and Redis answering. */
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test, rate: "10/second" } ]
`;
const KEY = 'k'.repeat(20);

describe('keyswap doctor and shared_state', () => {
  let redis: RedisServer;
  let h: Harness;
  beforeAll(async () => {
    redis = await startRedis({ password: 'doctor-redis-password-0123' });
    h = await startHarness({ secrets: SECRETS, secretValues: { REDIS_PASSWORD: 'doctor-redis-password-0123', SHARED_KEY: KEY }, top: `shared_state: { redis: { url: "${redis.url}", password_secret: REDIS_PASSWORD }, key_secret: SHARED_KEY }` });
  }, 30_000);
  afterAll(async () => {
    await h?.close();
    await redis?.close();
  });

  const doctor = (): ReturnType<typeof cliCollect> => cliCollect(['doctor', '--config', path.join(h.dir, 'keyswap.yaml')], { env: { HOME: h.dir, KEYSWAP_SECRET_TEST_API_KEY: h.canary, KEYSWAP_SECRET_REDIS_PASSWORD: 'doctor-redis-password-0123', KEYSWAP_SECRET_SHARED_KEY: KEY } });

  it('says Redis answers, and that a key_secret too short to seal with is one', async () => {
    const r = await doctor();
    expect(r.stdout).toContain(`ok shared_state: Redis at redis://127.0.0.1:${redis.port}/0 answers`);
    expect(r.stdout).toContain('!! shared_state.key_secret: the secret SHARED_KEY holds 20 bytes; it needs 32 or more random bytes');
    expect(r.stdout).not.toContain(KEY);
    expect(r.stdout).not.toContain('doctor-redis-password-0123');
  }, 30_000);

  it('says so when Redis does not answer, and what requests get meanwhile', async () => {
    await redis.kill();
    const r = await doctor();
    expect(r.stdout).toContain(`!! shared_state: Redis at redis://127.0.0.1:${redis.port}/0 did not answer within 3 s`);
    expect(r.stdout).toContain('requests that need it are refused (503)');
    expect(r.code).toBe(1);
    await redis.start();
  }, 30_000);
});
