import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';

describe('migrating from agent-vault-proxy', () => {
  it('its documented example bindings (header, body, compose/template, wildcards, honeytokens, bws) load unchanged', () => {
    // From its text: the content is what migrates; a checkout's file mode depends on the umask it had.
    const file = path.resolve(__dirname, '../fixtures/agent-vault-proxy.bindings.yaml');
    const c = parseConfig(readFileSync(file, 'utf8'), file);
    expect(c.secrets.map((s) => s.name)).toEqual([
      'ANTHROPIC_API_KEY', 'GITHUB_PAT', 'GITHUB_GIT_PAT', 'JFROG_TOKEN', 'DO-API-TOKEN', 'SLACK_WEBHOOK_TOKEN', 'JIRA_API_BASIC', 'KRAKEN_TOTP_BODY',
      'WEBHOOK_DUAL', 'GOOGLE_OAUTH', 'AWS_S3', 'WEBHOOK_HMAC', 'API_JWT', 'API_OAUTH_CC', 'GITHUB_APP', 'DECOY_AWS_PROD',
    ]);
    const kinds = new Map(c.secrets.map((s) => [s.name, s.sites.map((i) => (i.render.kind === 'minted' ? i.render.minter.kind : i.render.kind === 'signed' ? i.render.signer.kind : i.type))]));
    expect(kinds.get('WEBHOOK_DUAL')).toEqual(['header', 'body']);
    expect(kinds.get('GOOGLE_OAUTH')).toEqual(['oauth2_refresh']);
    expect(c.secrets.find((s) => s.name === 'GOOGLE_OAUTH')?.sites[0].render).toMatchObject({ minter: { tokenUrl: 'https://oauth2.googleapis.com/token', clientAuth: 'body_post' } });
    for (const [name, kind] of [['AWS_S3', 'sigv4'], ['WEBHOOK_HMAC', 'hmac'], ['API_JWT', 'jwt_bearer'], ['API_OAUTH_CC', 'oauth2_client_credentials'], ['GITHUB_APP', 'github_app']]) expect(kinds.get(name as string)).toEqual([kind]);
    expect(c.unmatchedDestinationPolicy).toBe('deny');
    expect(c.backend).toMatchObject({ type: 'bws', accessTokenFile: '/etc/agent-vault-proxy/bws-token', stateFile: '/var/lib/agent-vault-proxy/bws-state.json' });
    expect(c.secrets.find((s) => s.name === 'SLACK_WEBHOOK_TOKEN')?.sites[0]).toMatchObject({ type: 'body', contentType: 'application/json' });
    expect(c.secrets.find((s) => s.name === 'DECOY_AWS_PROD')?.honeytoken).toBe(true);
    expect(c.warnings).toEqual([]);
  });
});

describe('an agent-vault-proxy file with what keyswap does not have', () => {
  const FILE = '/cfg/bindings.yaml';
  const yaml = `version: 1
preflight:
  fail_on_warning: true
secrets:
  WEBHOOK:
    placeholder: "hmac-PLACEHOLDER-0123456789abcdef"
    inject:
      type: sigv4a
      region_set: ["*"]
      access_key_id_secret: AK
    bindings: [ { host: api.hmac-example.com } ]
  AWS:
    placeholder: "AKIAPLACEHOLDER0123456789AB"
    inject: { type: mtls, cert_secret: CERT }
    bindings: [ { host: s3.amazonaws.com } ]
  OK:
    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ"
    inject: { header: Authorization, format: "Bearer {OK}", token_url: "https://x" }
    bindings: [ { host: api.example.com } ]
`;
  it('names each inject type keyswap does not have first, once, without errors for its keys, and every other problem in the same pass; preflight is accepted', () => {
    let messages: string[] = [];
    try {
      parseConfig(yaml, FILE);
    } catch (err) {
      messages = (err as { errors: { message: string }[] }).errors.map((e) => e.message);
    }
    expect(messages).toEqual([
      `${FILE}:8: secrets.WEBHOOK.inject.type: inject type 'sigv4a' is not one this version of keyswap has (it has: header, basic, query, path, body, websocket_message, multi, oauth2_client_credentials, oauth2_refresh, google_service_account, github_app, jwt_bearer, sigv4, hmac)`,
      `${FILE}:14: secrets.AWS.inject.type: inject type 'mtls' is not one this version of keyswap has (it has: header, basic, query, path, body, websocket_message, multi, oauth2_client_credentials, oauth2_refresh, google_service_account, github_app, jwt_bearer, sigv4, hmac)`,
      `${FILE}:18: secrets.OK.inject.token_url: not valid for inject type header; valid keys: type, header, format, template`,
    ]);
  });

  it('preflight: loads with a warning that says keyswap does not run it, and what to run instead', () => {
    const c = parseConfig(`version: 1\npreflight: { fail_on_warning: true, checks: [backend] }\nsecrets: {}\n`, FILE);
    expect(c.warnings.join('\n')).toContain('fail_on_warning: true stops nothing; run `keyswap doctor`');
  });
});
