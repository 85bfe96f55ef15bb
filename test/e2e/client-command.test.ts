import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempWorld } from '../helpers/temp-world.js';

const run = (args: string[]) => cli(args);

describe('keyswap client', () => {
  it('add prints the token once, stores only its SHA-256, keeps the file’s comments; list and revoke work', () => {
    const original = `# my config\nversion: 1\nsecrets:\n  K:\n    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ" # keep me\n    inject: { header: A, format: "{K}" }\n    bindings: [ { host: a.example.com, methods: [GET], paths: ["/v1/**"] } ]\n`;
    const file = tempWorld('client').write('keyswap.yaml', original);
    const add = run(['client', 'add', 'ci-agent', '--secrets', 'K', '--expires', '30d', '--config', file]);
    expect(add.status).toBe(0);
    const token = /\n {2}(ks_\S+)\n/.exec(add.stdout)?.[1] ?? '';
    expect(token).toMatch(/^ks_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(text).toContain(createHash('sha256').update(token).digest('hex'));
    expect(text).toContain('# my config');
    expect(text).toContain('# keep me');
    // Not one untouched line is rewritten: the client is added as text after them (flow style and spacing kept).
    expect(text.startsWith(original)).toBe(true);
    expect(run(['client', 'list', '--config', file]).stdout).toMatch(/^ci-agent\tK\texpires \d{4}-/);
    expect(run(['client', 'add', 'x', '--secrets', 'NOPE', '--config', file]).stderr).toContain("clients.x.secrets[0]: 'NOPE' is not a secret in this file");
    expect(add.stdout).toContain('Apply it to a running keyswap with: keyswap reload');
    const revoke = run(['client', 'revoke', 'ci-agent', '--config', file]);
    expect(revoke.status).toBe(0);
    expect(revoke.stdout).toContain('No keyswap is serving this config; it applies at the next start.');
    expect(readFileSync(file, 'utf8')).not.toContain('ci-agent');
  });

  it('after the last revoke, every command says what the proxy does: nobody may use it (407)', () => {
    const file = tempWorld('client').write('keyswap.yaml', `version: 1\nbackend: { type: env }\nsecrets:\n  K:\n    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ"\n    inject: { header: A, format: "{K}" }\n    bindings: [ { host: a.example.com } ]\n`);
    expect(run(['explain', 'GET', 'https://a.example.com/', '-H', 'A: sk-PLACEHOLDER-0123456789ABCDEFGHIJ', '--config', file]).stdout).not.toContain('407');
    expect(run(['client', 'add', 'only', '--secrets', 'K', '--config', file]).status).toBe(0);
    // With a client configured, a request without one is refused at the door.
    expect(run(['explain', 'GET', 'https://a.example.com/', '--config', file]).stdout).toContain('refused: a client is required');
    const revoke = run(['client', 'revoke', 'only', '--config', file]);
    expect(revoke.stdout).toContain('clients: is empty: keyswap refuses every request (407)');
    expect(run(['client', 'list', '--config', file]).stdout).toContain('clients: is empty: keyswap refuses every request (407)');
    expect(run(['explain', 'GET', 'https://a.example.com/', '--config', file]).stdout).toMatch(/refused: clients: is empty.* → 407/);
    const doctor = run(['doctor', '--config', file]);
    expect(doctor.stdout).toMatch(/!! clients: is empty: keyswap refuses every request \(407\)[\s\S]*fix: keyswap client add NAME/);
  });
});
