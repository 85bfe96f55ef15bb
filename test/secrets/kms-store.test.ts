import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeAwsKms } from '../helpers/fake-aws-kms.js';
import { startFakeVault } from '../helpers/fake-vault.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 5: the file store's key wrapped by a KMS (envelope encryption). A key made locally, only its
 * wrapped form on disk, unwrapped at start; a store moved onto a KMS and back with `secret rekey`; a changed
 * wrapped key refused at start with the reason. AWS KMS through the official SDK against a local endpoint that
 * checks SigV4; Vault transit against the local Vault.
 */

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
`;
const VALUE = 'kms-wrapped-store-value';

/** Every file under these directories, read whole: the plain key must be in none of them. */
function everyFile(...dirs: string[]): Buffer[] {
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const f = path.join(d, e);
      const st = statSync(f);
      if (st.isDirectory()) walk(f);
      else if (st.isFile()) out.push(readFileSync(f));
    }
  };
  for (const d of dirs) walk(d);
  return out;
}

function configFile(dir: string, name: string, backend: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `version: 1\nstate_dir: ${dir}/state\n${backend}\nsecrets:${SECRETS}`);
  return file;
}

async function servesValue(backend: string, env: Record<string, string>, ca: ReturnType<typeof createTestCa>): Promise<void> {
  const h = await startHarness({ testCa: ca, backend, env, secrets: SECRETS });
  try {
    expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${VALUE}`);
  } finally {
    await h.close();
  }
}

describe('a store key wrapped by a KMS', () => {
  it('aws_kms: a key-file store moved onto KMS, served across restarts, a changed wrapped key refused, moved back; the plain key in no file', async () => {
    const ca = createTestCa();
    const kms = await startFakeAwsKms(ca);
    const w = tempWorld('kms');
    const store = w.path('secrets.enc');
    const kmsYaml = `kms: { endpoint: "${kms.url}", ca_file: ${w.write('kms-ca.pem', ca.certPem)} }`;
    const env = { AWS_ACCESS_KEY_ID: kms.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };
    const plainBackend = `backend: { type: file, config: { path: ${store}, key_file: ${w.path('store.key')}, ${kmsYaml} } }`;
    const kmsBackend = `backend: { type: file, config: { path: ${store}, key_kms: "aws_kms://${kms.arn}", ${kmsYaml} } }`;
    try {
      const plain = configFile(w.dir, 'plain.yaml', plainBackend);
      expect((await cliCollect(['secret', 'set', 'TEST_API_KEY', '--config', plain], { input: `${VALUE}\n`, env })).code).toBe(0);
      const moved = await cliCollect(['secret', 'rekey', '--to-kms', `aws_kms://${kms.arn}`, '--config', plain], { env });
      expect(moved.code, moved.stderr).toBe(0);
      expect(moved.stdout).toContain(`now under a key wrapped by aws_kms://${kms.arn}; only its wrapped form is on disk. Now set backend.config.key_kms`);

      // The plain-key config no longer opens the store, and says what does.
      const stale = await cliCollect(['secret', 'list', '--config', plain], { env });
      expect(stale.stderr).toContain(`this store's key is wrapped by aws_kms://${kms.arn}; set backend.config.key_kms`);

      const doc = JSON.parse(readFileSync(store, 'utf8')) as { kek: { kind: string; uri: string; wrapped: string } };
      expect(doc.kek.kind).toBe('kms');
      const key = kms.plaintextOf(doc.kek.wrapped);
      expect(key).toHaveLength(32);

      await servesValue(kmsBackend, env, ca);
      await servesValue(kmsBackend, env, ca); // a restart unwraps again
      const kmsConfig = configFile(w.dir, 'kms.yaml', kmsBackend);
      expect((await cliCollect(['secret', 'set', 'OTHER', '--config', kmsConfig], { input: 'other-value\n', env })).code).toBe(0);
      const after = JSON.parse(readFileSync(store, 'utf8')) as typeof doc;
      // Every write wraps a new key: a key read from a store is never written with again.
      expect(after.kek.wrapped).not.toBe(doc.kek.wrapped);
      const keys = [key, kms.plaintextOf(after.kek.wrapped)];
      for (const bytes of everyFile(w.dir)) {
        for (const k of keys) for (const form of [k.toString('base64'), k.toString('hex'), k.toString('latin1')]) expect(bytes.includes(Buffer.from(form, 'latin1'))).toBe(false);
      }

      // A changed wrapped key: keyswap does not start, and says why.
      const flipped = after.kek.wrapped.slice(0, 20) + (after.kek.wrapped[20] === 'A' ? 'B' : 'A') + after.kek.wrapped.slice(21);
      writeFileSync(store, JSON.stringify({ ...after, kek: { ...after.kek, wrapped: flipped } }), { mode: 0o600 });
      const refused = await cliCollect(['serve', '--config', kmsConfig], { env });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`cannot unwrap the store key with aws_kms://${kms.arn}: aws_kms://${kms.arn}: InvalidCiphertextException (HTTP 400)`);
      writeFileSync(store, JSON.stringify(after), { mode: 0o600 });

      kms.disabled = true;
      const disabled = await cliCollect(['serve', '--config', kmsConfig], { env });
      expect(disabled.stderr).toContain('DisabledException');
      kms.disabled = false;

      // An existing key file is refused: it could be an old key some copy still holds.
      const existing = await cliCollect(['secret', 'rekey', '--to-key-file', w.path('store.key'), '--config', kmsConfig], { env });
      expect(existing.code).toBe(2);
      expect(existing.stderr).toContain('exists; name a new file');
      const back = await cliCollect(['secret', 'rekey', '--to-key-file', w.path('back.key'), '--config', kmsConfig], { env });
      expect(back.stdout).toContain(`now under the key file ${w.path('back.key')}. Now set backend.config.key_file`);
      const list = await cliCollect(['secret', 'list', '--config', configFile(w.dir, 'back.yaml', `backend: { type: file, config: { path: ${store}, key_file: ${w.path('back.key')} } }`)]);
      expect(list.stdout).toMatch(/^OTHER\t.*\nTEST_API_KEY\t/);
      for (const r of [moved, stale, refused, disabled, back, list]) expect(r.stdout + r.stderr).not.toContain(VALUE);
    } finally {
      await kms.close();
    }
  });

  it('vault_transit: a new store under a transit key; rekey makes a new wrapped key; a store under another KMS is refused', async () => {
    const ca = createTestCa();
    const vault = await startFakeVault(ca);
    vault.transitKey('keyswap-store');
    const w = tempWorld('transit');
    const store = w.path('secrets.enc');
    const token = vault.token({ readable: ['transit/'], ttlSeconds: 3600, maxTtlSeconds: 7200, renewable: true });
    const kmsYaml = `kms: { address: "${vault.url}", ca_file: ${w.write('ca.pem', ca.certPem)}, auth: { method: token, token_file: ${w.write('token', token, 0o600)} } }`;
    const backend = `backend: { type: file, config: { path: ${store}, key_kms: "vault_transit://keyswap-store", ${kmsYaml} } }`;
    try {
      const config = configFile(w.dir, 'k.yaml', backend);
      expect((await cliCollect(['secret', 'set', 'TEST_API_KEY', '--config', config], { input: `${VALUE}\n` })).code).toBe(0);
      const first = (JSON.parse(readFileSync(store, 'utf8')) as { kek: { wrapped: string } }).kek.wrapped;
      expect(first).toMatch(/^vault:v1:/);
      await servesValue(backend, {}, ca);
      const rekey = await cliCollect(['secret', 'rekey', '--config', config]);
      expect(rekey.stdout).toContain('under a new key wrapped by vault_transit://keyswap-store; the old wrapped key opens nothing written from now on');
      expect((JSON.parse(readFileSync(store, 'utf8')) as { kek: { wrapped: string } }).kek.wrapped).not.toBe(first);
      await servesValue(backend, {}, ca);
      const other = configFile(w.dir, 'o.yaml', backend.replace('vault_transit://keyswap-store', 'vault_transit://another-key'));
      expect((await cliCollect(['secret', 'list', '--config', other])).stderr).toContain("this store's key is wrapped by vault_transit://keyswap-store, but the config names vault_transit://another-key");
      expect(vault.calls['transit-decrypt'] ?? 0).toBeGreaterThanOrEqual(2);
    } finally {
      await vault.close();
    }
  });

  it('config: key_kms is exclusive with key_file, a transit key needs its Vault, an unknown scheme is named', async () => {
    const { parseConfig, ConfigErrors } = await import('../../src/config/index.js');
    const errs = (cfg: string): string[] => {
      try {
        parseConfig(`version: 1\nbackend: { type: file, config: ${cfg} }\nsecrets: {}\n`, '/c/k.yaml');
      } catch (e) {
        if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
        throw e;
      }
      return [];
    };
    expect(errs('{ key_file: /k, key_kms: "aws_kms://arn:aws:kms:eu-west-1:123456789012:key/x" }')[0]).toContain('backend.config.key_kms: key_file and key_kms are exclusive');
    expect(errs('{ key_kms: "vault_transit://k" }')[0]).toContain('vault_transit://k needs the Vault that holds it');
    expect(errs('{ key_kms: "kms://x" }')[0]).toContain('must be aws_kms://ARN');
  });
});
