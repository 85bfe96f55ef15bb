import { describe, expect, it } from 'vitest';
import { parseConfig, type BackendSpec } from '../../src/config/index.js';
import { SecretNotFound, VaultBackend } from '../../src/secrets/index.js';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeVault, type FakeVault, type FakeVaultToken } from '../helpers/fake-vault.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { tempWorld, type TempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 3: the vault backend (KV version 2) against a local server speaking Vault's documented HTTP API
 * (test/helpers/fake-vault.ts), through a real keyswap: token, AppRole and Kubernetes logins, renewal and re-login,
 * rotation, a sealed Vault, a policy change, refused credentials at start and in doctor, and no value or token in
 * any output.
 */

const LONG: FakeVaultToken = { readable: ['secret/'], ttlSeconds: 3600, maxTtlSeconds: 7200, renewable: true };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface World { readonly ca: TestCa; readonly vault: FakeVault; readonly w: TempWorld; readonly caFile: string }

async function world(): Promise<World> {
  const ca = createTestCa();
  const vault = await startFakeVault(ca);
  const w = tempWorld('vault');
  return { ca, vault, w, caFile: w.write('vault-ca.pem', ca.certPem) };
}

const backendYaml = (v: World, auth: string, extra = ''): string =>
  `backend: { type: vault, config: { address: "${v.vault.url}", ca_file: ${v.caFile}, mount: secret, prefix: "keyswap/", ${extra}auth: ${auth} } }`;

async function specOf(v: World, auth: string): Promise<Extract<BackendSpec, { type: 'vault' }>> {
  const c = parseConfig(`version: 1\n${backendYaml(v, auth)}\nsecrets: {}\n`, v.w.path('k.yaml'));
  return c.backend as Extract<BackendSpec, { type: 'vault' }>;
}

const get = (h: Harness): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });

function noLeak(h: Harness, ...values: string[]): void {
  for (const text of [h.stdout(), h.stderr(), h.auditText()]) for (const v of values) expect(text).not.toContain(v);
}

describe('vault backend', () => {
  it('token auth: the current version goes upstream; a new version is picked up after the TTL; sealed fails closed with the reason, and recovers', async () => {
    const v = await world();
    v.vault.put('secret', 'keyswap/TEST_API_KEY', { value: 'vault-first' });
    const token = v.vault.token(LONG);
    const tokenFile = v.w.write('vault-token', `${token}\n`, 0o600);
    const h = await startHarness({ testCa: v.ca, backend: backendYaml(v, `{ method: token, token_file: ${tokenFile} }`), top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }' });
    try {
      expect((await get(h)).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer vault-first');
      v.vault.put('secret', 'keyswap/TEST_API_KEY', { value: 'vault-second' });
      await sleep(1200);
      expect((await get(h)).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer vault-second');

      v.vault.sealed = true;
      await sleep(1200);
      const sealed = await get(h);
      expect(sealed.status).toBe(503);
      expect(h.stdout() + h.stderr()).toContain('Vault is sealed');
      v.vault.sealed = false;
      await sleep(1100); // the backoff after one failure: 0.5–1 s
      expect((await get(h)).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer vault-second');
      noLeak(h, 'vault-first', 'vault-second', token);
    } finally {
      await h.close();
      await v.vault.close();
    }
  });

  it('a policy change (403) fails closed with the reason; a deleted secret is not found; nothing leaks', async () => {
    const v = await world();
    v.vault.put('secret', 'keyswap/TEST_API_KEY', { value: 'vault-policy-value' });
    const token = v.vault.token(LONG);
    const h = await startHarness({ testCa: v.ca, backend: backendYaml(v, `{ method: token, token_file: ${v.w.write('t', token, 0o600)} }`), top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }' });
    try {
      expect((await get(h)).status).toBe(200);
      v.vault.deny('secret/data/keyswap/TEST_API_KEY');
      await sleep(1200);
      expect((await get(h)).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/permission denied reading secret\/data\/keyswap\/TEST_API_KEY \(403/);
      noLeak(h, 'vault-policy-value', token);
    } finally {
      await h.close();
    }
    // A soft-deleted current version answers 404 with its metadata: not found, as a name never written.
    v.vault.put('secret', 'keyswap/GONE', { value: 'deleted-value' });
    v.vault.remove('secret', 'keyswap/GONE');
    const b = await VaultBackend.open(await specOf(v, `{ method: token, token_file: ${v.w.write('t2', v.vault.token(LONG), 0o600)} }`), () => {});
    await expect(b.fetch('GONE', { signal: AbortSignal.timeout(5000) })).rejects.toBeInstanceOf(SecretNotFound);
    await expect(b.fetch('NEVER', { signal: AbortSignal.timeout(5000) })).rejects.toBeInstanceOf(SecretNotFound);
    expect(await b.list({ signal: AbortSignal.timeout(5000) })).toEqual(['TEST_API_KEY', 'GONE']);
    await b.close();
    await v.vault.close();
  });

  it('AppRole: logs in, renews at two thirds of the lease, logs in again at the max TTL; requests keep flowing', async () => {
    const v = await world();
    v.vault.put('secret', 'keyswap/TEST_API_KEY', { value: 'approle-value' });
    v.vault.approle('role-123', 'secret-id-456', { readable: ['secret/'], ttlSeconds: 3, maxTtlSeconds: 5, renewable: true });
    const auth = `{ method: approle, role_id_file: ${v.w.write('role-id', 'role-123')}, secret_id_file: ${v.w.write('secret-id', 'secret-id-456', 0o600)} }`;
    const h = await startHarness({ testCa: v.ca, backend: backendYaml(v, auth), top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        statuses.push((await get(h)).status);
        await sleep(500);
      }
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(v.vault.calls['renew-self'] ?? 0).toBeGreaterThanOrEqual(1);
      expect(v.vault.calls['approle-login'] ?? 0).toBeGreaterThanOrEqual(2);
      noLeak(h, 'approle-value', 'secret-id-456');
    } finally {
      await h.close();
      await v.vault.close();
    }
  });

  it('Kubernetes login with a namespace; a secret names its own path and field; a missing field names the fields, never a value', async () => {
    const v = await world();
    v.vault.namespace = 'team-a';
    v.vault.put('secret', 'shared/openai', { api_key: 'k8s-field-value', org: 'org-visible-name' });
    v.vault.kubernetesRole('keyswap', 'eyJ.service-account.jwt', LONG);
    const jwt = v.w.write('sa-token', 'eyJ.service-account.jwt', 0o644);
    const h = await startHarness({
      testCa: v.ca,
      backend: backendYaml(v, `{ method: kubernetes, role: keyswap, jwt_file: ${jwt} }`, 'namespace: team-a, '),
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    backend: { path: shared/openai, field: api_key }
    bindings: [ { host: api.example.test } ]
  WRONG_FIELD:
    placeholder: "wf-PLACEHOLDER-WWWWWWWWWWWWWWWWWWWWW"
    inject: { header: X-Key, format: "{WRONG_FIELD}" }
    backend: { path: shared/openai, field: apikey }
    bindings: [ { host: other.example.test } ]
`,
    });
    try {
      expect((await get(h)).status, h.stdout() + h.stderr()).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer k8s-field-value');
      expect(v.vault.seen.filter((s) => s.path.startsWith('/v1/secret/')).every((s) => s.namespace === 'team-a')).toBe(true);
      const wrong = await curlVia(h, 'https://other.example.test/v1/echo', { headers: ['X-Key: wf-PLACEHOLDER-WWWWWWWWWWWWWWWWWWWWW'] });
      expect(wrong.status).toBe(503);
      expect(h.stdout() + h.stderr()).toContain("secret/data/shared/openai has no field 'apikey' (fields: api_key, org)");
      noLeak(h, 'k8s-field-value', 'org-visible-name', 'eyJ.service-account.jwt');
    } finally {
      await h.close();
      await v.vault.close();
    }
  });

  it('refused credentials stop keyswap at start with the reason, and doctor says the same; a loose token file is refused', async () => {
    const v = await world();
    const config = (auth: string): string => v.w.write('keyswap.yaml', `version: 1\nstate_dir: ${v.w.dir}/state\n${backendYaml(v, auth)}\nsecrets:\n  K:\n    placeholder: "${PLACEHOLDER}"\n    inject: { header: Authorization, format: "Bearer {K}" }\n    bindings: [ { host: api.example.com } ]\n`);
    const bad = config(`{ method: token, token_file: ${v.w.write('bad-token', 'hvs.not-a-token', 0o600)} }`);
    const serve = await cliCollect(['serve', '--config', bad]);
    expect(serve.code, serve.stdout + serve.stderr).toBe(2);
    expect(serve.stderr).toMatch(/vault backend: the token in .*bad-token was refused \(403 permission denied\)/);
    expect(serve.stderr).not.toContain('hvs.not-a-token');
    const doctor = await cliCollect(['doctor', '--config', bad]);
    expect(doctor.stdout).toMatch(/cannot be opened: vault backend: the token in .*bad-token was refused/);
    const loose = config(`{ method: approle, role_id_file: ${v.w.write('r', 'role')}, secret_id_file: ${v.w.write('s', 'sid', 0o644)} }`);
    const looseRun = await cliCollect(['doctor', '--config', loose]);
    expect(looseRun.stdout).toMatch(/s is readable by group or others \(mode 644\); run: chmod 600/);
    await v.vault.close();
  });

  it('config errors name the field: plain http off loopback, a key the login method does not take, a missing one', async () => {
    const { ConfigErrors } = await import('../../src/config/index.js');
    const errs = (backend: string): string[] => {
      try {
        parseConfig(`version: 1\nbackend: ${backend}\nsecrets: {}\n`, '/cfg/k.yaml');
      } catch (e) {
        if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
        throw e;
      }
      return [];
    };
    expect(errs('{ type: vault, config: { address: "http://vault.internal:8200", auth: { method: token, token_file: /t } } }')[0]).toMatch(/backend\.config\.address: 'http:\/\/vault\.internal:8200' must be https:\/\//);
    expect(errs('{ type: vault, config: { address: "https://vault.internal", auth: { method: approle, role_id_file: /r, token_file: /t } } }')).toEqual([
      '/cfg/k.yaml:2: backend.config.auth.secret_id_file: is required with method: approle',
      '/cfg/k.yaml:2: backend.config.auth.token_file: does not apply to method: approle (it takes role_id_file, secret_id_file, mount)',
    ]);
    expect(errs('{ type: vault, config: { address: "https://127.0.0.1:8200", auth: { method: kubernetes, role: r } } }')).toEqual([]);
  });
});
