import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliCollect } from '../../helpers/cli.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';

/*
 * attack26: with an aws_secrets_manager backend, keyswap's AWS identity may come from the SDK's chain (docs: "else
 * the SDK's standard chain ... ECS"). The container provider's bearer token AWS_CONTAINER_AUTHORIZATION_TOKEN is a
 * credential exactly like AWS_SECRET_ACCESS_KEY (it buys keyswap's role credentials from the container endpoint),
 * but `keyswap run` hands it, and the endpoint, to the agent.
 */
describe('attack26: AWS credential material under keyswap run', () => {
  it('keyswap run keeps the container-credentials token (and its endpoint) from the command, as it keeps the access keys', async () => {
    const h = await startHarness({
      top: 'backends:\n  aws: { type: aws_secrets_manager, config: { region: eu-west-1, endpoint: "https://127.0.0.1:9" } }',
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
`,
    });
    await h.stop();
    try {
      const env = {
        PATH: process.env.PATH ?? '',
        HOME: h.dir,
        KEYSWAP_SECRET_TEST_API_KEY: h.canary,
        AWS_ACCESS_KEY_ID: 'AKIAKEYSWAPOWNKEY000',
        AWS_SECRET_ACCESS_KEY: 'keyswap-own-secret-access-key-canary',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials',
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'keyswap-own-container-token-canary',
      };
      const r = await cliCollect(['run', '--config', path.join(h.dir, 'keyswap.yaml'), '--', process.execPath, '-e', 'console.log(JSON.stringify(process.env))'], { env });
      expect(r.code, r.stderr).toBe(0);
      const child = JSON.parse(r.stdout) as Record<string, string>;
      expect(child).not.toHaveProperty('AWS_SECRET_ACCESS_KEY'); // held
      expect(Object.keys(child).filter((k) => k.startsWith('AWS_CONTAINER_')), 'the agent received keyswap\'s container-credentials token').toEqual([]);
    } finally {
      await h.close();
    }
  });
});
