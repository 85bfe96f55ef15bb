import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEYSWAP } from '../helpers/harness.js';

const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, [KEYSWAP, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('keyswap client', () => {
  it('add prints the token once, stores only its SHA-256, keeps the file’s comments; list and revoke work', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keyswap-client-'));
    const file = path.join(dir, 'keyswap.yaml');
    writeFileSync(file, `# my config\nversion: 1\nsecrets:\n  K:\n    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ" # keep me\n    inject: { header: A, format: "{K}" }\n    bindings: [ { host: a.example.com } ]\n`);
    const add = run(['client', 'add', 'ci-agent', '--secrets', 'K', '--expires', '30d', '--config', file]);
    expect(add.status).toBe(0);
    const token = /\n {2}(ks_\S+)\n/.exec(add.stdout)?.[1] ?? '';
    expect(token).toMatch(/^ks_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(text).toContain(createHash('sha256').update(token).digest('hex'));
    expect(text).toContain('# my config');
    expect(text).toContain('# keep me');
    expect(run(['client', 'list', '--config', file]).stdout).toMatch(/^ci-agent\tK\texpires \d{4}-/);
    expect(run(['client', 'add', 'x', '--secrets', 'NOPE', '--config', file]).stderr).toContain("clients.x.secrets[0]: 'NOPE' is not a secret in this file");
    expect(run(['client', 'revoke', 'ci-agent', '--config', file]).status).toBe(0);
    expect(readFileSync(file, 'utf8')).not.toContain('ci-agent');
  });
});
