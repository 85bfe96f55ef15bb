import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBackend } from '../../../src/secrets/file-backend.js';
import { unseal } from '../../../src/secrets/store-crypto.js';
import { Secret } from '../../../src/secret.js';
import { cliCollect } from '../../helpers/cli.js';
import { startFakeAwsKms } from '../../helpers/fake-aws-kms.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack on `secret rekey` of a KMS store: KmsKeySource remembers "the key in force" as the first key it opened,
 * and open() never replaces it (`#current ??= …`, key-wrapper.ts). A running keyswap opened the store under K1;
 * the operator runs `keyswap secret rekey` (K1 leaked: a core dump, a debugger, an old process's memory), which
 * writes the store under a new K2 and promises "the old wrapped key opens nothing written from now on". The
 * running keyswap re-reads the store (opens K2, but keeps K1 as current) and its next write (an OAuth2 refresh
 * token rotated and written back, FileBackend.store) puts the whole store back under K1's wrapped form: every
 * secret, the new token included, opens with the old key again.
 */
describe('a KMS rekey undone by the running keyswap\'s next write', () => {
  it('after secret rekey, a write by the serving process does not go back to the old key', async () => {
    const ca = createTestCa();
    const kms = await startFakeAwsKms(ca);
    const w = tempWorld('kms-rekey-revert');
    const store = w.path('secrets.enc');
    const caFile = w.write('kms-ca.pem', ca.certPem);
    const env = { AWS_ACCESS_KEY_ID: kms.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };
    const config = path.join(w.dir, 'k.yaml');
    writeFileSync(config, `version: 1\nstate_dir: ${w.dir}/state\nbackend: { type: file, config: { path: ${store}, key_kms: "aws_kms://${kms.arn}", kms: { endpoint: "${kms.url}", ca_file: ${caFile} } } }\nsecrets:\n  TEST_API_KEY:\n    placeholder: "sk-PLACEHOLDER-TEST-0123456789abcdef"\n    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }\n    bindings: [ { host: api.example.test } ]\n`);
    try {
      expect((await cliCollect(['secret', 'set', 'TEST_API_KEY', '--config', config], { input: 'first-value\n', env })).code).toBe(0);
      const wrappedOf = (): string => (JSON.parse(readFileSync(store, 'utf8')) as { kek: { wrapped: string } }).kek.wrapped;
      const w1 = wrappedOf();
      const k1 = kms.plaintextOf(w1);

      // "serve": the file backend as keyswap serve opens it.
      const spec = { type: 'file' as const, path: store, keyFile: null, passphraseFile: null, keyKms: `aws_kms://${kms.arn}`, kms: { endpoint: kms.url, caFile, timeoutMs: 5000, vault: null } };
      const serving = await FileBackend.open(spec, env);
      expect((await serving.fetch('TEST_API_KEY', {} as never)).reveal()).toBe('first-value');

      const rekey = await cliCollect(['secret', 'rekey', '--config', config], { env });
      expect(rekey.stdout).toContain('the old wrapped key opens nothing written from now on');
      expect(wrappedOf()).not.toBe(w1);
      await new Promise((r) => setTimeout(r, 20));
      expect((await serving.fetch('TEST_API_KEY', {} as never)).reveal()).toBe('first-value'); // re-read under K2

      // The running keyswap writes (a rotated refresh token written back).
      await serving.store('ROTATED_TOKEN', new Secret('rotated-refresh-token-value'));
      await serving.close();

      const doc = JSON.parse(readFileSync(store, 'utf8')) as { kek: { wrapped: string }; wrapped_dek: { iv: string; tag: string; ct: string } };
      const dekUnderOldKey = unseal(k1, doc.wrapped_dek, 'keyswap-store/v2/dek');
      expect({ sameWrappedAsBeforeRekey: doc.kek.wrapped === w1, oldKeyOpensStore: dekUnderOldKey !== null }, 'the store written after the rekey opens with the old key').toEqual({ sameWrappedAsBeforeRekey: false, oldKeyOpensStore: false });
    } finally {
      await kms.close();
    }
  });
});
