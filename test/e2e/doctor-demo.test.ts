import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempWorld } from '../helpers/temp-world.js';

const ks = (cwd: string, env: Record<string, string>, ...args: string[]): SpawnSyncReturns<string> => cli(args, { cwd, env, timeoutMs: 60_000 });
const setSecret = (cwd: string): SpawnSyncReturns<string> => cli(['secret', 'set', 'OPENAI_API_KEY'], { cwd, input: 'sk-stored-value-1234567890\n' });

describe('keyswap demo', () => {
  it('shows, on loopback alone, what the agent sent, what the API received, what came back and the audit line', () => {
    const r = ks(tempWorld('demo-cwd').dir, {}, 'demo');
    expect(r.status).toBe(0);
    const out = r.stdout as string;
    const secret = /DEMO_KEY=(demo-secret-\w+)/.exec(out)?.[1] as string;
    const placeholder = /DEMO_KEY=(sk-PLACEHOLDER-\w+)/.exec(out)?.[1] as string;
    expect(out).toMatch(new RegExp(`the API received: +GET /v1/whoami  Authorization: Bearer ${secret}`));
    expect(out).toMatch(new RegExp(`the API received: +DELETE /v1/everything  Authorization: Bearer ${placeholder}`));
    // What the agent got back never holds the real value: the API's echo is scrubbed.
    for (const line of out.split('\n').filter((l) => l.includes('the agent got back'))) expect(line).not.toContain(secret);
    expect(out).toMatch(/"type":"inject_decision".*"decision":"allowed","reason":"binding_matched"/);
    expect(out).toMatch(/"decision":"denied","reason":"binding_scope_violation"/);
  });
});

describe('keyswap doctor', () => {
  const setUp = (): string => {
    const dir = tempWorld('doctor').dir;
    // The binding first: init makes the CA constrained to the hosts bound then.
    writeFileSync(path.join(dir, 'keyswap.yaml'), `version: 1
state_dir: ./certs
audit: { path: ./audit.jsonl }
backend: { type: file }
secrets:
  OPENAI_API_KEY:
    placeholder: "sk-PLACEHOLDER-DOCTOR-0123456789abcdef"
    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }
    bindings: [ { host: api.openai.com, methods: [POST], paths: ["/v1/**"] } ]
`);
    expect(ks(dir, {}, 'init').status).toBe(0);
    return dir;
  };

  it('all good on a fresh init with its secret stored', () => {
    const dir = setUp();
    expect(setSecret(dir).status).toBe(0);
    const r = ks(dir, {}, 'doctor');
    expect(r.stdout).toMatch(/all good/);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('sk-stored-value');
  });

  it('names each problem with its fix: a loose CA key, a missing value, a real key and a NO_PROXY bypass in the shell', () => {
    const dir = setUp();
    chmodSync(path.join(dir, 'certs', 'ca-key.pem'), 0o644);
    writeFileSync(path.join(dir, 'certs', 'audit.key'), `${Buffer.alloc(32, 1).toString('base64')}\n`, { mode: 0o640 });
    const realKey = `sk-proj-${'Zz9'.repeat(16)}`;
    const r = ks(dir, { OPENAI_API_KEY: realKey, NO_PROXY: 'api.openai.com' }, 'doctor');
    expect(r.status).toBe(1);
    const out = r.stdout as string;
    expect(out).toMatch(/!! .*ca-key\.pem is 644[\s\S]*fix: chmod 600 /);
    expect(out).toMatch(/!! audit key .*audit\.key is 640: whoever can read it can rewrite the audit log undetected[\s\S]*fix: chmod 600 /);
    expect(out).toMatch(/!! backend file has no value for OPENAI_API_KEY[\s\S]*fix: keyswap secret set OPENAI_API_KEY/);
    expect(out).toMatch(/!! OPENAI_API_KEY in this shell looks like a real OpenAI key/);
    expect(out).toMatch(/!! NO_PROXY holds api\.openai\.com: requests there bypass keyswap/);
    expect(out).not.toContain(realKey);
  });

  it.skipIf(process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v setpriv'], { stdio: 'ignore' }).status !== 0)(
    'run as the user who can read the store key (the quick start), the first finding says so, with keyswap install as the fix',
    () => {
      const dir = setUp();
      expect(setSecret(dir).status).toBe(0);
      // The quick start's files belong to the agent's user: here `nobody`, who then runs doctor.
      expect(spawnSync('chown', ['-R', '65534:65534', dir]).status).toBe(0);
      const r = cli(['doctor'], { cwd: dir, via: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], timeoutMs: 60_000 });
      const first = r.stdout.split('\n')[0] ?? '';
      expect(first, r.stdout + r.stderr).toMatch(/^!! the store key .*store\.key is readable by this user \(nobody\): anything running as this user/);
      expect(r.stdout).toContain('fix: run keyswap under its own user: sudo keyswap install');
      expect(r.status).toBe(1);
    },
  );

  it('an invalid config exits 2 with file:line: field', () => {
    const dir = tempWorld('doctor').dir;
    writeFileSync(path.join(dir, 'keyswap.yaml'), 'version: 2\nsecrets: {}\n');
    const r = ks(dir, {}, 'doctor');
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/keyswap\.yaml:1: version/);
  });
});
