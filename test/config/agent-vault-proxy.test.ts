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
      'ANTHROPIC_API_KEY', 'GITHUB_PAT', 'GITHUB_GIT_PAT', 'JFROG_TOKEN', 'DO-API-TOKEN', 'SLACK_WEBHOOK_TOKEN', 'JIRA_API_BASIC', 'KRAKEN_TOTP_BODY', 'DECOY_AWS_PROD',
    ]);
    expect(c.unmatchedDestinationPolicy).toBe('deny');
    expect(c.backend).toMatchObject({ type: 'bws', accessTokenFile: '/etc/agent-vault-proxy/bws-token', stateFile: '/var/lib/agent-vault-proxy/bws-state.json' });
    expect(c.secrets.find((s) => s.name === 'SLACK_WEBHOOK_TOKEN')?.inject).toMatchObject({ type: 'body', contentType: 'application/json' });
    expect(c.secrets.find((s) => s.name === 'DECOY_AWS_PROD')?.honeytoken).toBe(true);
    expect(c.warnings).toEqual([]);
  });
});
