import { describe, expect, it } from 'vitest';
import { ConfigErrors, namesToFetch, parseConfig } from '../../../src/config/index.js';

/*
 * attack26: configs that validate but do something other than what docs/configuration.md and docs/backends.md say.
 */
const FILE = '/cfg/keyswap.yaml';
function errorsOf(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  return [];
}

describe('attack26: config differentials', () => {
  it('aws_secrets_manager: plain http to a non-loopback endpoint is refused like vault and onepassword (values would cross the network in clear)', () => {
    const vault = errorsOf('version: 1\nbackend: { type: vault, config: { address: "http://10.0.0.5:8200", auth: { method: token, token_file: /t } } }\nsecrets: {}\n');
    const op = errorsOf('version: 1\nbackend: { type: onepassword, config: { url: "http://10.0.0.5:8080", token_file: /t, vault: V } }\nsecrets: {}\n');
    const aws = errorsOf('version: 1\nbackend: { type: aws_secrets_manager, config: { region: eu-west-1, endpoint: "http://10.0.0.5:4566" } }\nsecrets: {}\n');
    expect(vault.length).toBe(1);
    expect(op.length).toBe(1);
    expect(aws.length, 'aws endpoint http://10.0.0.5 accepted: GetSecretValue answers (the SecretString) travel unencrypted').toBe(1);
  });

  it('backend: { path, field } on a secret whose renderings never fetch its own name is refused, not silently ignored', () => {
    // The operator says: this secret's value is at vault path apps/github field pem. It is a github_app secret, so
    // what is fetched is GITHUB_APP_PEM, from <prefix>GITHUB_APP_PEM field `value`: the path and field do nothing.
    const doc = `version: 1
backend: { type: vault, config: { address: "https://vault.internal:8200", prefix: "keyswap/", auth: { method: token, token_file: /t } } }
secrets:
  GITHUB_APP:
    placeholder: "ghs-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA"
    inject: { type: github_app, app_id: "1", installation_id: "2", private_key_secret: GITHUB_APP_PEM }
    backend: { path: apps/github, field: pem }
    bindings: [ { host: api.github.com } ]
  TEMPLATED:
    placeholder: "tt-PLACEHOLDER-BBBBBBBBBBBBBBBBBBBBBB"
    inject: { header: Authorization, template: "Bearer {{ USER }}:{{ PASS }}" }
    compose: [USER, PASS]
    backend: { path: shared/basic, field: combined }
    bindings: [ { host: api.example.com } ]
`;
    const errors = errorsOf(doc);
    if (errors.length === 0) {
      const c = parseConfig(doc, FILE);
      const gh = c.secrets.find((s) => s.name === 'GITHUB_APP');
      const tt = c.secrets.find((s) => s.name === 'TEMPLATED');
      // What keyswap actually does: the locations are recorded under names nobody fetches.
      expect({ ghFetches: namesToFetch(gh!), ttFetches: namesToFetch(tt!), locatedNames: [...c.locations.keys()] }).toEqual({ ghFetches: ['GITHUB_APP_PEM'], ttFetches: ['USER', 'PASS'], locatedNames: ['GITHUB_APP', 'TEMPLATED'] });
    }
    expect(errors.length, 'path/field accepted on secrets that never fetch their own name: silently ignored').toBeGreaterThan(0);
  });
});
