import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeGcp } from '../helpers/fake-gcp.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, items 4 and 5 for Google Cloud: gcp_secret_manager and gcp_kms:// through the official clients
 * (@google-cloud/secret-manager, @google-cloud/kms; HTTP/JSON transport, Application Default Credentials from a
 * service-account key file, which sign their own bearer JWTs), pointed at a local endpoint that checks that JWT.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PH2 = 'db-PLACEHOLDER-GCPJSONFIELDXXXXXXXXXX';

describe('Google Cloud backends', () => {
  it('gcp_secret_manager: latest version, a JSON field, rotation, outage and recovery, a denied secret refused; nothing leaks', async () => {
    const ca = createTestCa();
    const gcp = await startFakeGcp(ca);
    gcp.addVersion('p-keyswap', 'agents-TEST_API_KEY', 'gcp-first-value');
    gcp.addVersion('p-keyswap', 'db', JSON.stringify({ password: 'gcp-json-password' }));
    const w = tempWorld('gcp');
    const env = { GOOGLE_APPLICATION_CREDENTIALS: w.write('sa.json', gcp.serviceAccount, 0o600), NODE_EXTRA_CA_CERTS: w.write('ca.pem', ca.certPem) };
    const h = await startHarness({
      testCa: ca,
      env,
      backend: `backend: { type: gcp_secret_manager, config: { project: p-keyswap, prefix: agents-, endpoint: "${gcp.url}" } }`,
      top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }',
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  DB_PASSWORD:
    placeholder: "${PH2}"
    inject: { header: X-Db-Password, format: "{DB_PASSWORD}" }
    backend: { path: db, field: password }
    bindings: [ { host: other.example.test } ]
`,
    });
    const get = (): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    try {
      expect((await get()).status, h.stderr()).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer gcp-first-value');
      expect((await curlVia(h, 'https://other.example.test/v1/x', { headers: [`X-Db-Password: ${PH2}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers['x-db-password']).toBe('gcp-json-password');
      gcp.addVersion('p-keyswap', 'agents-TEST_API_KEY', 'gcp-rotated-value');
      await sleep(1200);
      expect((await get()).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer gcp-rotated-value');
      gcp.mode = 'down';
      await sleep(1200);
      expect((await get()).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/accessing projects\/p-keyswap\/secrets\/agents-TEST_API_KEY\/versions\/latest failed: UNAVAILABLE/);
      gcp.mode = 'ok';
      await sleep(1100);
      expect((await get()).status).toBe(200);
      gcp.denied.add('projects/p-keyswap/secrets/agents-TEST_API_KEY');
      await sleep(1200);
      expect((await get()).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/failed: PERMISSION_DENIED: the credentials may not access it/);
      for (const text of [h.stdout(), h.stderr(), h.auditText()]) for (const v of ['gcp-first-value', 'gcp-rotated-value', 'gcp-json-password', 'PRIVATE KEY']) expect(text).not.toContain(v);
    } finally {
      await h.close();
      await gcp.close();
    }
  });

  it('doctor names credentials the service refuses; keyswap run keeps GOOGLE_APPLICATION_CREDENTIALS from the agent', async () => {
    const ca = createTestCa();
    const gcp = await startFakeGcp(ca);
    gcp.addVersion('p-keyswap', 'K', 'gcp-doctor-value');
    const w = tempWorld('gcp-doctor');
    const config = w.write('keyswap.yaml', `version: 1\nstate_dir: ${w.dir}/state\nbackend: { type: gcp_secret_manager, config: { project: p-keyswap, endpoint: "${gcp.url}" } }\nsecrets:\n  K:\n    placeholder: "${PLACEHOLDER}"\n    inject: { header: Authorization, format: "Bearer {K}" }\n    bindings: [ { host: api.example.com } ]\n`);
    const caEnv = { NODE_EXTRA_CA_CERTS: w.write('ca.pem', ca.certPem) };
    const good = await cliCollect(['doctor', '--config', config], { env: { ...caEnv, GOOGLE_APPLICATION_CREDENTIALS: w.write('sa.json', gcp.serviceAccount, 0o600) } });
    expect(good.stdout).toContain('backend gcp_secret_manager answers for its one secret');
    const bad = await cliCollect(['doctor', '--config', config], { env: { ...caEnv, GOOGLE_APPLICATION_CREDENTIALS: w.write('wrong.json', gcp.wrongServiceAccount, 0o600) } });
    expect(bad.stdout).toMatch(/backend gcp_secret_manager unavailable: .*failed: UNAUTHENTICATED: no valid credentials/);
    const run = await cliCollect(['run', '--config', config, '--', 'sh', '-c', 'echo "adc=${GOOGLE_APPLICATION_CREDENTIALS:-unset}"'], { env: { ...caEnv, GOOGLE_APPLICATION_CREDENTIALS: w.path('sa.json') } });
    expect(run.stdout).toContain('adc=unset');
    for (const r of [good, bad, run]) expect(r.stdout + r.stderr).not.toContain('gcp-doctor-value');
    await gcp.close();
  });

  it('gcp_kms: a store written under a Cloud KMS key, served after a restart, a changed wrapped key refused', async () => {
    const ca = createTestCa();
    const gcp = await startFakeGcp(ca);
    const keyName = 'projects/p-keyswap/locations/global/keyRings/keyswap/cryptoKeys/store';
    gcp.cryptoKey(keyName);
    const w = tempWorld('gcp-kms');
    const env = { GOOGLE_APPLICATION_CREDENTIALS: w.write('sa.json', gcp.serviceAccount, 0o600), NODE_EXTRA_CA_CERTS: w.write('ca.pem', ca.certPem) };
    const store = w.path('secrets.enc');
    const backend = `backend: { type: file, config: { path: ${store}, key_kms: "gcp_kms://${keyName}", kms: { endpoint: "${gcp.url}" } } }`;
    const config = w.write('k.yaml', `version: 1\nstate_dir: ${w.dir}/state\n${backend}\nsecrets:\n  TEST_API_KEY:\n    placeholder: "${PLACEHOLDER}"\n    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }\n    bindings: [ { host: api.example.test } ]\n`);
    try {
      const set = await cliCollect(['secret', 'set', 'TEST_API_KEY', '--config', config], { input: 'gcp-kms-store-value\n', env });
      expect(set.code, set.stderr).toBe(0);
      const doc = JSON.parse(readFileSync(store, 'utf8')) as { kek: { kind: string; uri: string; wrapped: string } };
      expect(doc.kek).toMatchObject({ kind: 'kms', uri: `gcp_kms://${keyName}` });
      for (let i = 0; i < 2; i++) {
        const h = await startHarness({ testCa: ca, env, backend });
        try {
          expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
          expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer gcp-kms-store-value');
        } finally {
          await h.close();
        }
      }
      const wrapped = doc.kek.wrapped;
      writeFileSync(store, JSON.stringify({ ...doc, kek: { ...doc.kek, wrapped: wrapped.slice(0, 30) + (wrapped[30] === 'A' ? 'B' : 'A') + wrapped.slice(31) } }), { mode: 0o600 });
      const refused = await cliCollect(['serve', '--config', config], { env });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`cannot unwrap the store key with gcp_kms://${keyName}: gcp_kms://${keyName}: INVALID_ARGUMENT (Decryption failed: the ciphertext is invalid.)`);
    } finally {
      await gcp.close();
    }
  });
});
