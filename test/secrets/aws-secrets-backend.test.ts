import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeAwsSecrets } from '../helpers/fake-aws-secrets.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 4: aws_secrets_manager through the official SDK, pointed at a local endpoint that speaks the
 * service's protocol and checks SigV4 (test/helpers/fake-aws-secrets.ts), through a real keyswap.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PH2 = 'db-PLACEHOLDER-DDDDDDDDDDDDDDDDDDDDDDD';

describe('aws_secrets_manager backend', () => {
  it('reads prefix+NAME and a JSON field with credentials from keyswap\'s environment; rotation, outage and recovery; nothing leaks', async () => {
    const ca = createTestCa();
    const aws = await startFakeAwsSecrets(ca);
    aws.put('agents/TEST_API_KEY', 'aws-first-value');
    aws.put('prod/db', JSON.stringify({ username: 'app', password: 'aws-json-password' }));
    const w = tempWorld('aws');
    const caFile = w.write('aws-ca.pem', ca.certPem);
    const h = await startHarness({
      testCa: ca,
      backend: `backend: { type: aws_secrets_manager, config: { region: eu-west-1, endpoint: "${aws.url}", ca_file: ${caFile}, prefix: agents/ } }`,
      top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }',
      env: { AWS_ACCESS_KEY_ID: aws.accessKeyId, AWS_SECRET_ACCESS_KEY: aws.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' },
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  DB_PASSWORD:
    placeholder: "${PH2}"
    inject: { header: X-Db-Password, format: "{DB_PASSWORD}" }
    backend: { path: prod/db, field: password }
    bindings: [ { host: other.example.test } ]
`,
    });
    try {
      expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer aws-first-value');
      expect(aws.calls.at(-1)).toEqual({ target: 'secretsmanager.GetSecretValue', secretId: 'agents/TEST_API_KEY', region: 'eu-west-1' });
      expect((await curlVia(h, 'https://other.example.test/v1/x', { headers: [`X-Db-Password: ${PH2}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers['x-db-password']).toBe('aws-json-password');

      aws.put('agents/TEST_API_KEY', 'aws-rotated-value');
      await sleep(1200);
      expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer aws-rotated-value');

      aws.mode = 'down';
      await sleep(1200);
      expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/GetSecretValue agents\/TEST_API_KEY failed: InternalServiceError \(HTTP 500\)/);
      aws.mode = 'ok';
      await sleep(1100);
      expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);

      aws.denied.add('agents/TEST_API_KEY');
      await sleep(1200);
      expect((await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/AccessDeniedException \(HTTP 400\): the credentials' IAM policy does not allow secretsmanager:GetSecretValue/);
      for (const text of [h.stdout(), h.stderr(), h.auditText()]) {
        for (const v of ['aws-first-value', 'aws-rotated-value', 'aws-json-password', aws.secretAccessKey]) expect(text).not.toContain(v);
      }
    } finally {
      await h.close();
      await aws.close();
    }
  });

  it('doctor reads each secret once with the SDK\'s endpoint variable; bad credentials are named; keyswap run keeps AWS credentials from the agent', async () => {
    const ca = createTestCa();
    const aws = await startFakeAwsSecrets(ca);
    aws.put('K', 'doctor-value');
    const w = tempWorld('aws-doctor');
    const config = w.write('keyswap.yaml', `version: 1\nstate_dir: ${w.dir}/state\nbackend: { type: aws_secrets_manager, config: { region: eu-west-1, ca_file: ${w.write('ca.pem', ca.certPem)} } }\nsecrets:\n  K:\n    placeholder: "${PLACEHOLDER}"\n    inject: { header: Authorization, format: "Bearer {K}" }\n    bindings: [ { host: api.example.com } ]\n`);
    const env = { AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.url, AWS_ACCESS_KEY_ID: aws.accessKeyId, AWS_EC2_METADATA_DISABLED: 'true' };
    const good = await cliCollect(['doctor', '--config', config], { env: { ...env, AWS_SECRET_ACCESS_KEY: aws.secretAccessKey } });
    expect(good.stdout).toMatch(/backend aws_secrets_manager answers for its one secret/);
    const bad = await cliCollect(['doctor', '--config', config], { env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong-secret-access-key' } });
    expect(bad.stdout).toMatch(/backend aws_secrets_manager unavailable: .*InvalidSignatureException \(HTTP 400\): the secret access key does not match/);
    const badId = await cliCollect(['doctor', '--config', config], { env: { ...env, AWS_ACCESS_KEY_ID: 'AKIAOTHER', AWS_SECRET_ACCESS_KEY: 'x' } });
    expect(badId.stdout).toMatch(/UnrecognizedClientException \(HTTP 400\): the access key is not valid/);
    for (const r of [good, bad, badId]) expect(r.stdout + r.stderr).not.toMatch(/doctor-value|wrong-secret-access-key/);

    const run = await cliCollect(['run', '--config', config, '--', 'sh', '-c', 'echo "key=${AWS_SECRET_ACCESS_KEY:-unset} id=${AWS_ACCESS_KEY_ID:-unset}"'], { env: { ...env, AWS_SECRET_ACCESS_KEY: aws.secretAccessKey } });
    expect(run.stdout).toContain('key=unset id=unset');
    await aws.close();
  });
});
