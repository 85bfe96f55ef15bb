import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsKmsWrapper } from '../../../src/secrets/aws-kms-wrapper.js';
import { seal, unseal } from '../../../src/secrets/store-crypto.js';
import { cliCollect } from '../../helpers/cli.js';
import { startFakeAwsKms } from '../../helpers/fake-aws-kms.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack on a KMS store by someone who can replace the store file and may call kms:Encrypt on the key, but not
 * kms:Decrypt (Encrypt-only grants are the usual "producer" role, and the encryption context is a constant,
 * `purpose: keyswap-store-kek/v1`, nothing of this store). With a key file, replacing the store needs the key;
 * here the attacker wraps a key of their own with Encrypt and writes a whole store under it, at a revision above
 * the recorded one. keyswap accepts it (the KMS unwraps it fine), injects the attacker's chosen values, and, because
 * writes reuse "the key in force" (the one the header named), every secret set afterwards is sealed under the
 * attacker's key: the attacker reads it from the file without ever calling Decrypt.
 */
describe('a KMS store header minted with Encrypt alone', () => {
  it('a secret set after the swap is not readable with the attacker\'s own key', async () => {
    const ca = createTestCa();
    const kms = await startFakeAwsKms(ca);
    const w = tempWorld('kms-forge');
    const store = w.path('secrets.enc');
    const caFile = w.write('kms-ca.pem', ca.certPem);
    const env = { AWS_ACCESS_KEY_ID: kms.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };
    const config = path.join(w.dir, 'k.yaml');
    writeFileSync(config, `version: 1\nstate_dir: ${w.dir}/state\nbackend: { type: file, config: { path: ${store}, key_kms: "aws_kms://${kms.arn}", kms: { endpoint: "${kms.url}", ca_file: ${caFile} } } }\nsecrets:\n  TEST_API_KEY:\n    placeholder: "sk-PLACEHOLDER-TEST-0123456789abcdef"\n    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }\n    bindings: [ { host: api.example.test } ]\n`);
    try {
      expect((await cliCollect(['secret', 'set', 'TEST_API_KEY', '--config', config], { input: 'legit-value\n', env })).code).toBe(0);
      const header = (JSON.parse(readFileSync(store, 'utf8')) as { kek: { uri: string } }).kek;

      // The attacker: one Encrypt call, no Decrypt.
      const wrapper = await awsKmsWrapper(kms.arn, { endpoint: kms.url, caFile, timeoutMs: 5000 }, env);
      const mine = randomBytes(32);
      const wrapped = await wrapper.wrap(mine);
      await wrapper.close();
      const dek = randomBytes(32);
      const now = new Date().toISOString();
      writeFileSync(store, JSON.stringify({
        format: 'keyswap-store', version: 2, kek: { kind: 'kms', uri: header.uri, wrapped },
        wrapped_dek: seal(mine, dek, 'keyswap-store/v2/dek'),
        index: seal(dek, Buffer.from(JSON.stringify({ revision: 1000, entries: { TEST_API_KEY: now } })), 'keyswap-store/v2/index'),
        entries: { TEST_API_KEY: seal(dek, Buffer.from('attacker-chosen-value'), 'keyswap-store/v2/entry/TEST_API_KEY') },
      }), { mode: 0o600 });

      // The operator adds a secret.
      const set = await cliCollect(['secret', 'set', 'NEW_SECRET', '--config', config], { input: 'operator-new-secret-value\n', env });

      const doc = JSON.parse(readFileSync(store, 'utf8')) as { wrapped_dek: { iv: string; tag: string; ct: string }; entries: Record<string, { iv: string; tag: string; ct: string }> };
      const d = unseal(mine, doc.wrapped_dek, 'keyswap-store/v2/dek');
      const stolen = d === null || doc.entries.NEW_SECRET === undefined ? null : unseal(d, doc.entries.NEW_SECRET, 'keyswap-store/v2/entry/NEW_SECRET')?.toString();
      expect({ setExit: set.code, stolen }, 'the forged store was accepted and the new secret sealed under the attacker\'s key').not.toMatchObject({ setExit: 0, stolen: 'operator-new-secret-value' });
    } finally {
      await kms.close();
    }
  });
});
