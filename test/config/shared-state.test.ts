import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig } from '../../src/config/index.js';

/* Issue #29, item 3: `shared_state:` as written, and each mistake named by file, line and field. */
const FILE = '/cfg/keyswap.yaml';
const PH = 'sk-PLACEHOLDER-0123456789ABCDEFGHIJ';
const SECRETS = `secrets:\n  K:\n    placeholder: "${PH}"\n    inject: { header: Authorization, format: "Bearer {K}" }\n    bindings: [ { host: api.example.com } ]\n`;
const MINTED = `secrets:\n  K:\n    placeholder: "${PH}"\n    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.com/token", client_id_secret: ID, client_secret_secret: SEC }\n    bindings: [ { host: api.example.com } ]\n`;

function load(shared: string, secrets = SECRETS): { errors: string[]; warnings: string[]; spec: unknown } {
  try {
    const c = parseConfig(`version: 1\nshared_state:\n${shared}\n${secrets}`, FILE);
    return { errors: [], warnings: [...c.warnings], spec: c.sharedState };
  } catch (err) {
    if (err instanceof ConfigErrors) return { errors: err.errors.map((e) => e.message), warnings: [], spec: null };
    throw err;
  }
}

describe('shared_state: in the config', () => {
  it('reads the URL, the password and key as backend secret names, TLS, and the defaults', () => {
    expect(load('  redis: { url: "rediss://keyswap@redis.internal:6380/2", password_secret: REDIS_PASSWORD, tls: { ca_file: ca.pem } }\n  key_secret: SHARED_KEY', MINTED).spec).toEqual({
      redis: { host: 'redis.internal', port: 6380, db: 2, username: 'keyswap', passwordSecret: 'REDIS_PASSWORD', tls: { caFile: '/cfg/ca.pem', serverName: null }, prefix: 'keyswap:' },
      keySecret: 'SHARED_KEY', onUnavailable: 'refuse', replicas: 1,
    });
  });

  it.each([
    ['a password in the URL', '  redis: { url: "redis://:hunter2@127.0.0.1:6379" }', `${FILE}:3: shared_state.redis.url: holds a password: put it in the backend and name it in password_secret`],
    ['not a Redis URL', '  redis: { url: "http://127.0.0.1:6379" }', `${FILE}:3: shared_state.redis.url: 'http://127.0.0.1:6379' is not a Redis URL`],
    ['a database out of range', '  redis: { url: "redis://127.0.0.1:6379/99" }', `${FILE}:3: shared_state.redis.url: '/99' is not a database number`],
    ['tls with plain redis://', '  redis: { url: "redis://127.0.0.1:6379", tls: { ca_file: ca.pem } }', `${FILE}:3: shared_state.redis.tls: needs a rediss:// URL`],
    ['local without replicas', '  redis: { url: "redis://127.0.0.1:6379" }\n  on_unavailable: local', `${FILE}:4: shared_state.on_unavailable: local needs replicas: N`],
    ['a password_secret that is not a secret name', '  redis: { url: "redis://127.0.0.1:6379", password_secret: "a b" }', `${FILE}:3: shared_state.redis.password_secret: 'a b' must be a secret name`],
  ])('%s is refused, naming the field', (_name, shared, expected) => {
    const { errors } = load(shared);
    expect(errors.some((e) => e.startsWith(expected)), errors.join('\n')).toBe(true);
  });

  it('minted credentials without key_secret are refused: replicas share them encrypted under it', () => {
    expect(load('  redis: { url: "redis://127.0.0.1:6379" }', MINTED).errors).toContain(`${FILE}:2: shared_state: needs key_secret: NAME (a backend secret of 32 random bytes or more, the same on every replica): K mint credentials that replicas share, encrypted under it`);
  });

  it('plain TCP to another host loads with a warning that says what crosses the network', () => {
    expect(load('  redis: { url: "redis://redis.internal:6379" }').warnings).toEqual([`${FILE}:3: shared_state.redis.url: 'redis://redis.internal:6379' is plain TCP to another host: the Redis password and the shared counts cross the network readable (minted credentials are encrypted); use rediss://`]);
    expect(load('  redis: { url: "redis://127.0.0.1:6379" }').warnings).toEqual([]);
  });
});
