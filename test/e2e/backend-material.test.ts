import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCollect, type CliResult } from '../helpers/cli.js';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

// The env backend under a non-default prefix: keyswap reads TEST_API_KEY from CI_VAULT_TEST_API_KEY. The harness's
// own keyswap is stopped at once, so each `keyswap run` below starts its own from the same environment the
// command inherits: the case where backend material and the agent share one shell.
const BWS_TOKEN = `0.bws-token-${Date.now()}-canary`;
const OTHER_SECRET = `other-secret-${Date.now()}-canary`;
const PASSPHRASE_FILE = `/nonexistent/passphrase-${Date.now()}-canary`;

let h: Harness;
let credentialsDir: string;
beforeAll(async () => {
  h = await startHarness({ backend: 'backend: { type: env, config: { prefix: CI_VAULT_ } }' });
  await h.stop();
  credentialsDir = path.join(h.dir, 'credentials-canary');
  mkdirSync(credentialsDir);
  chmodSync(credentialsDir, 0o700);
});
afterAll(async () => {
  await h.close();
});

/** The shell a user would run keyswap from: keyswap's secrets and unlock material beside ordinary variables. */
function shellEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: h.dir,
    CI_VAULT_TEST_API_KEY: h.canary,
    KEYSWAP_SECRET_OTHER: OTHER_SECRET,
    BWS_ACCESS_TOKEN: BWS_TOKEN,
    KEYSWAP_PASSPHRASE_FILE: PASSPHRASE_FILE,
    CREDENTIALS_DIRECTORY: credentialsDir,
    ORDINARY_SETTING: 'kept',
  };
}
const MATERIAL = ['CI_VAULT_TEST_API_KEY', 'KEYSWAP_SECRET_OTHER', 'BWS_ACCESS_TOKEN', 'KEYSWAP_PASSPHRASE_FILE', 'CREDENTIALS_DIRECTORY'];
const VALUES = (): string[] => [h.canary, OTHER_SECRET, BWS_TOKEN, PASSPHRASE_FILE, credentialsDir];

const keyswap = (args: string[], env: Record<string, string>): Promise<CliResult> => cliCollect(args, { env });
const configPath = (): string => path.join(h.dir, 'keyswap.yaml');

describe('backend material never reaches the agent', () => {
  it('keyswap run keeps env-backend secrets (configured and default prefix), BWS_ACCESS_TOKEN, KEYSWAP_PASSPHRASE_FILE and CREDENTIALS_DIRECTORY from the command, names them on stderr, and still injects', async () => {
    const script = `const r = await fetch('https://api.example.test/v1/echo', { headers: { authorization: 'Bearer ' + process.env.TEST_API_KEY } });
await r.text();
console.log(JSON.stringify({ status: r.status, env: process.env }));`;
    const r = await keyswap(['run', '--config', configPath(), '--', process.execPath, '--input-type=module', '-e', script], shellEnv());
    expect(r.code).toBe(0);
    const seen = JSON.parse(r.stdout) as { status: number; env: Record<string, string> };
    // keyswap itself still read its secret from its own environment: the upstream got it.
    expect(seen.status).toBe(200);
    expect(h.upstream.requests[h.upstream.requests.length - 1]?.headers.authorization).toBe(`Bearer ${h.canary}`);
    for (const name of MATERIAL) expect(seen.env).not.toHaveProperty(name);
    expect(seen.env.TEST_API_KEY).toBe(PLACEHOLDER);
    expect(seen.env.ORDINARY_SETTING).toBe('kept');
    const notice = /keyswap: removed (.*) from the command's environment \(backend material\)/.exec(r.stderr);
    expect(notice?.[1]?.split(', ').sort()).toEqual([...MATERIAL].sort());
    for (const value of VALUES()) expect(r.stdout + r.stderr).not.toContain(value);
    expect(findCanary(h, [r.stdout, r.stderr])).toEqual([]);
  });

  it('no environment block the agent can read holds a value: its own, keyswap run’s (its parent), any ancestor’s, any process’s it can open', async () => {
    // The agent walks the tree as a prompt-injected one would: /proc/<pid>/environ of every ancestor, then of every
    // process it may open (all of them when the tests run as root).
    const script = `const fs = require('node:fs');
const blocks = {};
for (const pid of fs.readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
  try { blocks[pid] = fs.readFileSync('/proc/' + pid + '/environ').toString('base64'); } catch {}
}
const ancestors = [];
for (let pid = process.pid; pid > 1;) {
  const st = fs.readFileSync('/proc/' + pid + '/stat', 'latin1');
  pid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
  ancestors.push(pid);
}
console.log(JSON.stringify({ self: process.pid, ancestors, blocks }));`;
    const r = await keyswap(['run', '--config', configPath(), '--', process.execPath, '-e', script], shellEnv());
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { self: number; ancestors: number[]; blocks: Record<string, string> };
    // The blocks were readable: the agent's own and its parent's (keyswap run) at least.
    expect(Object.keys(seen.blocks)).toContain(String(seen.self));
    expect(Object.keys(seen.blocks)).toContain(String(seen.ancestors[0]));
    const secretValues = [h.canary, OTHER_SECRET, BWS_TOKEN];
    const holding = Object.entries(seen.blocks).filter(([, b64]) => secretValues.some((v) => Buffer.from(b64, 'base64').toString('latin1').includes(v))).map(([pid]) => pid);
    expect(holding).toEqual([]);
    // keyswap run's block still names the variables, emptied: what it cleared, not a block it never had.
    expect(Buffer.from(seen.blocks[String(seen.ancestors[0])] ?? '', 'base64').toString('latin1')).toContain('CI_VAULT_TEST_API_KEY=\0');
  });

  it('keyswap run removes backend material that --env-file brings, as well as the shell’s', async () => {
    const envFile = path.join(h.dir, 'agent.env');
    writeFileSync(envFile, `KEYSWAP_SECRET_FROM_FILE=${OTHER_SECRET}\nFILE_SETTING=kept\n`);
    const env = { PATH: process.env.PATH ?? '', HOME: h.dir, CI_VAULT_TEST_API_KEY: h.canary };
    const r = await keyswap(['run', '--config', configPath(), '--env-file', envFile, '--', 'env'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('FILE_SETTING=kept');
    expect(r.stdout).not.toMatch(/^(KEYSWAP_SECRET_FROM_FILE|CI_VAULT_TEST_API_KEY)=/m);
    expect(r.stderr).toMatch(/removed (CI_VAULT_TEST_API_KEY, KEYSWAP_SECRET_FROM_FILE|KEYSWAP_SECRET_FROM_FILE, CI_VAULT_TEST_API_KEY) from the command's environment/);
    for (const value of [h.canary, OTHER_SECRET]) expect(r.stdout + r.stderr).not.toContain(value);
  });

  it('keyswap env prints no backend material and warns, by name only, that the shell holds some', async () => {
    const envFile = path.join(h.dir, 'agent-for-env.env');
    writeFileSync(envFile, `KEYSWAP_SECRET_FROM_FILE=${OTHER_SECRET}\nBWS_ACCESS_TOKEN=${BWS_TOKEN}\nFILE_SETTING=kept\n`);
    const r = await keyswap(['env', '--config', configPath(), '--env-file', envFile], shellEnv());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("export FILE_SETTING='kept'");
    expect(r.stdout).toContain(`export TEST_API_KEY='${PLACEHOLDER}'`);
    expect(r.stdout).not.toMatch(/export (KEYSWAP_SECRET_|CI_VAULT_|BWS_|KEYSWAP_PASSPHRASE|CREDENTIALS_DIRECTORY)/);
    expect(r.stderr).toMatch(/left (KEYSWAP_SECRET_FROM_FILE, BWS_ACCESS_TOKEN|BWS_ACCESS_TOKEN, KEYSWAP_SECRET_FROM_FILE) out of the export lines \(backend material\)/);
    const warning = /warning: this shell holds (.*) \(backend material\)/.exec(r.stderr);
    expect(warning?.[1]?.split(', ').sort()).toEqual([...MATERIAL].sort());
    for (const value of VALUES()) expect(r.stdout + r.stderr).not.toContain(value);
  });
});
