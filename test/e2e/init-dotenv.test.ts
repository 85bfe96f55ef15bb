import { spawnSync } from 'node:child_process';
import { linkSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #33, the CLI review: `init --from-env` silently left real keys in a .env whose lines end in CRLF and LF
 * mixed (one line appended on Windows), skipped double-quoted values with a backslash and `KEY: value` lines, moved
 * the first of two assignments of a name (loaders use the last) while blaming "an earlier init", and said nothing of
 * a .env that git tracks or that has a second hard link. The .env is now read line by line as the loaders users run
 * read it, and any line that still looks like a key after init is named, with a failing exit code.
 */

const tail = (n: number, seed: string): string => seed.repeat(40).slice(0, n);
const OPENAI = `sk-proj-${tail(48, 'Oa1')}`;
const ANTHROPIC = `sk-ant-api03-${tail(40, 'An2')}`;
const GITHUB = `ghp_${tail(36, 'Gh3')}`;
const STRIPE = `sk_live_${tail(32, 'St4')}`;
const GROQ = `gsk_${tail(40, 'Gq6')}`;
const KEYS = [OPENAI, ANTHROPIC, GITHUB, STRIPE, GROQ];

const CONFIG = `version: 1
listen: 127.0.0.1:0
state_dir: ./certs
audit: { path: ./audit.jsonl }
backend: { type: file }
secrets: {}
`;

function world(env: string): { dir: string; run: (...args: string[]) => ReturnType<typeof cli>; env: () => string } {
  const w = tempWorld('init-dotenv');
  w.write('keyswap.yaml', CONFIG);
  w.write('.env', env);
  return { dir: w.dir, run: (...args) => cli(args, { cwd: w.dir }), env: () => readFileSync(w.path('.env'), 'latin1') };
}

describe('init --from-env reads a .env as its loaders do', () => {
  it('mixed CRLF and LF line endings: every key moved, each line keeping its own ending', () => {
    const w = world(`OPENAI_API_KEY=${OPENAI}\r\nANTHROPIC_API_KEY=${ANTHROPIC}\nGITHUB_TOKEN=${GITHUB}\r\nDEBUG=1\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const after = w.env();
    for (const k of KEYS) expect(after).not.toContain(k);
    expect(after.split(/(?<=\n)/).map((l) => (l.endsWith('\r\n') ? 'crlf' : 'lf'))).toEqual(['crlf', 'lf', 'crlf', 'lf']);
    expect(after).toMatch(/^OPENAI_API_KEY=sk-proj-PLACEHOLDER-/);
  });

  it('double quotes with escapes, KEY: value, export, names with dots: moved or left as loaders read them', () => {
    const w = world(`ANTHROPIC_API_KEY="${ANTHROPIC}"\nNOTE="a \\"quoted\\" line\\nwith a newline"\nOPENAI_API_KEY: ${OPENAI}\nexport GITHUB_TOKEN='${GITHUB}'\napp.name=demo\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const after = w.env();
    for (const k of [OPENAI, ANTHROPIC, GITHUB]) expect(after).not.toContain(k);
    expect(after).toContain('NOTE="a \\"quoted\\" line\\nwith a newline"');
    expect(after).toMatch(/^OPENAI_API_KEY: sk-proj-PLACEHOLDER-/m);
  });

  it('a quoted value spanning lines (a PEM-like key under a provider name) is moved whole, as one line', () => {
    const w = world(`GITHUB_TOKEN="${GITHUB.slice(0, 20)}\n${GITHUB.slice(20)}"\nDEBUG=1\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(w.env()).toMatch(/^GITHUB_TOKEN="ghp_PLACEHOLDER-[^"\n]+"\nDEBUG=1\n$/);
  });

  it('a name assigned twice: the value loaders use (the last) is moved, and a copy of it earlier is rewritten too', () => {
    const w = world(`OPENAI_API_KEY=${OPENAI}\nDEBUG=1\nOPENAI_API_KEY=${OPENAI}\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(w.env()).not.toContain(OPENAI);
    expect(r.stdout).not.toContain('earlier init');
  });

  it('a name assigned two different keys: the last is moved, and the other is named as left, exit 1', () => {
    const w = world(`OPENAI_API_KEY=${OPENAI.replace('Oa1', 'Zz9')}\nOPENAI_API_KEY=${OPENAI}\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\.env:1: still holds what looks like a OpenAI key, not moved/);
    expect(w.env()).not.toContain(OPENAI);
  });

  it('a line no loader reads as an assignment that holds a key is named, exit 1 (never "no provider keys to move" in silence)', () => {
    const w = world(`# token below\n  ${STRIPE}\nDEBUG=1\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\.env:2: still holds what looks like a Stripe key, not moved/);
  });

  // Found attacking the fix: an unclosed quote made the lines after it one value, closed by the next line's quote.
  it('a quote that does not close its value (text after the closing quote) is read as dotenv reads it: the next line\'s key is moved', () => {
    const w = world(`APP_TITLE="My app\nOPENAI_API_KEY=${OPENAI}\nGREETING="hi"\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status, r.stderr).toBe(0);
    expect(w.env()).not.toContain(OPENAI);
    expect(w.env()).toMatch(/^APP_TITLE="My app\nOPENAI_API_KEY=sk-proj-PLACEHOLDER-[^\n]+\nGREETING="hi"\n$/);
  });

  it('a key inside a value over several lines (where loaders may disagree on its end) is named, exit 1', () => {
    const w = world(`NOTES="first line\n${GITHUB}\nlast line"\nDEBUG=1\n`);
    const r = w.run('init', '--from-env', '.env');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\.env:2: still holds what looks like a GitHub key, not moved/);
  });

  it('warns when git tracks the .env (its history keeps the keys) and when it has a second hard link', () => {
    const w = world(`GROQ_API_KEY=${GROQ}\n`);
    const git = (...a: string[]) => spawnSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { cwd: w.dir, encoding: 'utf8' });
    expect(git('init', '-q').status).toBe(0);
    expect(git('add', '.env').status).toBe(0);
    linkSync(path.join(w.dir, '.env'), path.join(w.dir, 'env.backup'));
    const r = w.run('init', '--from-env', '.env');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\.env is tracked by git: its history still holds the keys/);
    expect(r.stderr).toMatch(/\.env has 1 other hard link/);
    for (const k of KEYS) expect(r.stdout + r.stderr).not.toContain(k);
  });
});

describe('the .env of keyswap run is read the same way', () => {
  it('keyswap run --env-file takes a CRLF/LF file, KEY: value and escaped double quotes', () => {
    const w = world('');
    writeFileSync(path.join(w.dir, 'agent.env'), 'A=1\r\nB: two\nC="x\\"y"\r\n');
    const r = w.run('run', '--env-file', 'agent.env', '--', 'sh', '-c', 'printf "%s|%s|%s" "$A" "$B" "$C"');
    expect(r.stdout, r.stderr).toBe('1|two|x"y');
  });
});
