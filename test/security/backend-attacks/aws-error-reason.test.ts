import { describe, expect, it } from 'vitest';
import { cliCollect } from '../../helpers/cli.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * attack26: an AWS endpoint that cannot be reached is reported as "GetSecretValue <id> failed: Error": the SDK's
 * network errors are plain Errors (name 'Error'), and the backend keeps only the name, dropping the code
 * (ECONNREFUSED, ENOTFOUND, a TLS failure, a timeout) that says what is wrong. Vault and 1Password name it.
 */
describe('attack26: aws_secrets_manager error reasons', () => {
  it('doctor names why the endpoint cannot be reached', async () => {
    const w = tempWorld('a26-aws');
    const config = w.write('keyswap.yaml', `version: 1
state_dir: ${w.dir}/state
backend: { type: aws_secrets_manager, config: { region: eu-west-1, endpoint: "https://127.0.0.1:9", timeout_seconds: 2 } }
secrets:
  K:
    placeholder: "sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA"
    inject: { header: Authorization, format: "Bearer {K}" }
    bindings: [ { host: api.example.com } ]
`);
    const doctor = await cliCollect(['doctor', '--config', config], { env: { HOME: w.dir, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE00', AWS_SECRET_ACCESS_KEY: 'example-secret-access-key' } });
    const line = doctor.stdout.split('\n').find((l) => l.includes('GetSecretValue')) ?? doctor.stdout;
    expect(line).toMatch(/ECONNREFUSED|connect/i);
  });
});
