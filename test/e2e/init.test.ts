import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliCollect } from '../helpers/cli.js';
import { makeTempWorld, tempWorld, type TempWorld } from '../helpers/temp-world.js';
import { createTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

// One real-looking key per built-in provider, each unique so a leak names itself.
const tail = (n: number, seed: string): string => (seed.repeat(40)).slice(0, n);
const KEYS: Record<string, string> = {
  OPENAI_API_KEY: `sk-proj-${tail(48, 'Oa1')}`,
  ANTHROPIC_API_KEY: `sk-ant-api03-${tail(40, 'An2')}`,
  GITHUB_TOKEN: `ghp_${tail(36, 'Gh3')}`,
  STRIPE_SECRET_KEY: `sk_live_${tail(32, 'St4')}`,
  SLACK_BOT_TOKEN: `xoxb-${tail(30, '5lk')}`,
  GROQ_API_KEY: `gsk_${tail(40, 'Gq6')}`,
  MISTRAL_API_KEY: tail(32, 'Mi7'),
  GEMINI_API_KEY: `AIza${tail(35, 'Go8')}`,
  HF_TOKEN: `hf_${tail(34, 'Hf9')}`,
  OPENROUTER_API_KEY: `sk-or-v1-${tail(48, 'Or0')}`,
};
const ENV = `# keys for the agent
export OPENAI_API_KEY=${KEYS.OPENAI_API_KEY}   # production
ANTHROPIC_API_KEY="${KEYS.ANTHROPIC_API_KEY}"
GITHUB_TOKEN='${KEYS.GITHUB_TOKEN}'
STRIPE_SECRET_KEY=${KEYS.STRIPE_SECRET_KEY}
SLACK_BOT_TOKEN=${KEYS.SLACK_BOT_TOKEN}

GROQ_API_KEY=${KEYS.GROQ_API_KEY}
MISTRAL_API_KEY=${KEYS.MISTRAL_API_KEY}
GEMINI_API_KEY=${KEYS.GEMINI_API_KEY}
HF_TOKEN=${KEYS.HF_TOKEN}
OPENROUTER_API_KEY=${KEYS.OPENROUTER_API_KEY}
DATABASE_URL=postgres://localhost/app
DEBUG=1
`;

let world: TempWorld;
let dir: string;
let upstream: Upstream;
const ks = (...args: string[]): SpawnSyncReturns<string> => cli(args, { cwd: dir });
/** Every file under dir except the encrypted store, concatenated: where a moved key must never be. */
const everyFile = (d = dir): string => readdirSync(d).map((f) => path.join(d, f)).map((p) => (statSync(p).isDirectory() ? everyFile(p) : p.endsWith('secrets.enc') ? '' : readFileSync(p, 'latin1'))).join('\n');

beforeAll(async () => {
  world = makeTempWorld('init');
  dir = world.dir;
  const ca = createTestCa();
  writeFileSync(path.join(dir, 'upstream-ca.pem'), ca.certPem);
  upstream = await startUpstream({ tls: ca.issue(['api.openai.com']) });
  // An existing config (as an operator would have) that reaches the local stand-in for api.openai.com.
  writeFileSync(path.join(dir, 'keyswap.yaml'), `# my keyswap
version: 1
listen: 127.0.0.1:0
state_dir: ./certs
audit: { path: ./audit.jsonl }
backend: { type: file }
upstream:
  extra_ca_file: ./upstream-ca.pem
  resolve: { "api.openai.com:443": "127.0.0.1:${upstream.port}" }
secrets: {}
`);
  writeFileSync(path.join(dir, '.env'), ENV);
  chmodSync(path.join(dir, '.env'), 0o640);
});
afterAll(async () => {
  await upstream.close();
  world.remove();
});

describe('keyswap init --from-env', () => {
  let first: ReturnType<typeof spawnSync>;
  beforeAll(() => {
    first = ks('init', '--from-env', '.env');
  });

  it('moves every provider key into the store, one line per key and never a value', () => {
    expect(first.status).toBe(0);
    for (const name of Object.keys(KEYS)) expect(first.stdout).toMatch(new RegExp(`\\.env:\\d+: ${name}: .* moved to the encrypted store`));
    expect(first.stdout).toMatch(/moved 10 keys; 2 other variables left unchanged/);
    expect(first.stdout).toMatch(/next: keyswap run --env-file \.env -- /);
    const list = ks('secret', 'list').stdout as string;
    for (const name of Object.keys(KEYS)) expect(list).toContain(name);
  });

  it('rewrites the .env in place: same lines, order, comments, quoting and mode; only values become placeholders', () => {
    const after = readFileSync(path.join(dir, '.env'), 'utf8').split('\n');
    const before = ENV.split('\n');
    expect(after).toHaveLength(before.length);
    after.forEach((line, i) => {
      const was = before[i] as string;
      const key = Object.entries(KEYS).find(([, v]) => was.includes(v));
      if (key === undefined) expect(line).toBe(was);
      else expect(line).toBe(was.replace(key[1], line.match(/[A-Za-z0-9_-]*PLACEHOLDER-[0-9A-Z]{26}/)?.[0] ?? '<none>'));
    });
    expect(statSync(path.join(dir, '.env')).mode & 0o777).toBe(0o640);
  });

  it('a placeholder keeps the kind its key announced: a live Stripe key gets sk_live_, a project OpenAI key sk-proj-', () => {
    const env = readFileSync(path.join(dir, '.env'), 'utf8');
    expect(env).toMatch(/^STRIPE_SECRET_KEY=sk_live_PLACEHOLDER-[0-9A-Z]{26}$/m);
    expect(env).toMatch(/^export OPENAI_API_KEY=sk-proj-PLACEHOLDER-[0-9A-Z]{26} {3}# production$/m);
    expect(env).toMatch(/^GITHUB_TOKEN='ghp_PLACEHOLDER-[0-9A-Z]{26}'$/m);
  });

  it('no moved key remains in any file or output (stdout, stderr, config, .env, temp files)', () => {
    const everywhere = `${first.stdout}${first.stderr}${everyFile()}`;
    for (const value of Object.values(KEYS)) expect(everywhere).not.toContain(value);
  });

  it('keeps the config’s comments and adds preset bindings and routes that load', () => {
    const yaml = readFileSync(path.join(dir, 'keyswap.yaml'), 'utf8');
    expect(yaml.startsWith('# my keyswap\n')).toBe(true);
    expect(yaml).toMatch(/OPENAI_API_KEY:\n\s+placeholder: sk-proj-PLACEHOLDER-/);
    expect(yaml).toContain('host: api.openai.com');
    expect(yaml).toMatch(/openai: https:\/\/api\.openai\.com/);
    expect(ks('check').status).not.toBe(2);
  });

  it('refuses to move a key twice: a real value under a name the config already binds is left where it is', () => {
    const envPath = path.join(dir, '.env');
    const current = readFileSync(envPath, 'utf8');
    writeFileSync(envPath, `${current}GROQ_API_KEY=${KEYS.GROQ_API_KEY}\n`);
    const again = ks('init', '--from-env', '.env');
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/GROQ_API_KEY: not moved: .* already has a secret GROQ_API_KEY/);
    expect(again.stdout).toMatch(/OPENAI_API_KEY: already a placeholder/);
    expect(again.stdout).not.toContain(KEYS.GROQ_API_KEY);
    writeFileSync(envPath, current);
  });

  it('then one more command runs an agent behind keyswap: the upstream gets the real key from the .env’s placeholder', async () => {
    const run = await cliCollect(['run', '--env-file', '.env', '--', 'sh', '-c', 'curl -sS https://api.openai.com/v1/models -H "Authorization: Bearer $OPENAI_API_KEY"'], { cwd: dir });
    const r = { code: run.code, out: run.stdout, err: run.stderr };
    expect(r.err).not.toMatch(/curl:/);
    expect(r.code).toBe(0);
    expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEYS.OPENAI_API_KEY}`);
    expect(`${r.out}${r.err}`).not.toContain(KEYS.OPENAI_API_KEY);
  });
});

describe('keyswap init inside a git work tree', () => {
  it('keeps the state directory out of commits: one `git add -A` stages no key, store or CA key', () => {
    const repo = tempWorld('init-git').dir;
    const git = (...a: string[]) => spawnSync('git', a, { cwd: repo, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: repo, GIT_CONFIG_NOSYSTEM: '1' } });
    expect(git('init', '-q').status).toBe(0);
    writeFileSync(path.join(repo, '.env'), `OPENAI_API_KEY=sk-proj-${'Ab3'.repeat(16)}\n`);
    const r = cli(['init', '--from-env', '.env'], { cwd: repo });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('is inside a git work tree: wrote');
    expect(git('add', '-A').status).toBe(0);
    const staged = git('diff', '--cached', '--name-only').stdout.split('\n').filter(Boolean);
    expect(staged.sort()).toEqual(['.env', 'keyswap.yaml']);
  });
});
