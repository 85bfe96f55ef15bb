import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliCollect, startCli, type CliProcess } from '../helpers/cli.js';
import { rawTlsVia } from '../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../helpers/harness.js';

/*
 * Issue #28: `keyswap run` gives its command a session of its own — a fresh token, the client's secrets or fewer
 * (--secrets), ending when the command exits — listed by `keyswap client list`, revocable on its own.
 */

const TOKEN = 'ks_session-parent-token-0123456789';
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const PH = 'sk-PLACEHOLDER-SESSION-0123456789abcd';
const PH2 = 'sk-PLACEHOLDER-SESSION-OTHER-01234567';

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
  OTHER_KEY:
    placeholder: "${PH2}"
    inject: { header: X-Api-Key, format: "{OTHER_KEY}" }
    bindings:
      - { host: api.example.test }
`;

let h: Harness;
let run: CliProcess | null = null;
afterEach(async () => {
  if (run !== null && existsSync(path.join(h.dir, 'proxy-url'))) writeFileSync(path.join(h.dir, 'stop'), '');
  await run?.stop();
  run = null;
  await h?.close();
});

/** `keyswap run` of a command that writes its proxy URL and waits for the test's `stop` file. */
async function startRun(...extra: string[]): Promise<{ name: string; token: string }> {
  h = await startHarness({ secrets: SECRETS, secretValues: { OTHER_KEY: 'other-real-value-0123' }, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY, OTHER_KEY] }\n` });
  const tokenFile = path.join(h.dir, 'token');
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  run = startCli(['run', '--config', path.join(h.dir, 'keyswap.yaml'), '--client', 'agent-a', '--token-file', tokenFile, ...extra, '--',
    'sh', '-c', 'echo "$HTTPS_PROXY" > "$0/proxy-url"; i=0; while [ ! -f "$0/stop" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done', h.dir, `--key=${PH}`], { cwd: h.dir, env: { HOME: h.dir } });
  expect(await waitFor(() => existsSync(path.join(h.dir, 'proxy-url')) && readFileSync(path.join(h.dir, 'proxy-url'), 'utf8').includes('\n'), 15_000), run.stderr()).toBe(true);
  const url = new URL(readFileSync(path.join(h.dir, 'proxy-url'), 'utf8').trim());
  return { name: decodeURIComponent(url.username), token: decodeURIComponent(url.password) };
}

async function get(auth: string, headers: string): Promise<string> {
  const t = await rawTlsVia(h, 'api.example.test', 443, {}, auth);
  t.write(`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\n${headers}Connection: close\r\n\r\n`);
  let got = '';
  t.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  await new Promise((r) => t.once('close', r));
  return got;
}

describe('keyswap run: a session of its own', () => {
  it('a fresh token, listed with its command, scoped by --secrets, audited under its name, ended when the command exits', async () => {
    const s = await startRun('--secrets', 'TEST_API_KEY');
    expect(s.name).toMatch(/^run-[0-9a-f]{6}$/);
    expect(s.token).not.toBe(TOKEN);
    expect(run?.stderr()).toContain(`session ${s.name} (client agent-a)`);
    const list = await cliCollect(['client', 'list', '--config', path.join(h.dir, 'keyswap.yaml')], { cwd: h.dir });
    expect(list.stdout).toMatch(new RegExp(`${s.name}\\tTEST_API_KEY\\tsession of agent-a since \\S+: sh -c`));
    // The command line is shown with its placeholder masked, and the audit names only the program.
    expect(list.stdout).toContain('--key={TEST_API_KEY}');
    expect(list.stdout).not.toContain(PH);
    expect((await get(`${s.name}:${s.token}`, `Authorization: Bearer ${PH}\r\n`)).slice(0, 12)).toBe('HTTP/1.1 200');
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    // OTHER_KEY is the parent's, not this session's: the placeholder stays.
    await get(`${s.name}:${s.token}`, `X-Api-Key: ${PH2}\r\n`);
    expect(h.upstream.requests.at(-1)?.headers['x-api-key']).toBe(PH2);
    const records = h.auditRecords();
    expect(records.some((r) => r.type === 'inject_decision' && r.client === s.name && r.secret_name === 'TEST_API_KEY' && r.decision === 'allowed')).toBe(true);
    expect(records.some((r) => r.type === 'inject_decision' && r.client === s.name && r.secret_name === 'OTHER_KEY' && r.reason === 'client_not_allowed')).toBe(true);
    expect(records.find((r) => r.type === 'operator' && r.action === 'session_started' && r.target === s.name)?.reason).toBe('for agent-a: sh');
    expect(h.auditText()).not.toContain(PH);
    writeFileSync(path.join(h.dir, 'stop'), '');
    expect(await run?.closed).toBe(0);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'operator' && r.action === 'session_ended' && r.target === s.name), 5000)).toBe(true);
    expect((await get(`${s.name}:${s.token}`, '').catch((e: Error) => e.message))).toMatch(/407/);
    expect(findCanary(h, [run?.stdout() ?? '', run?.stderr() ?? '', list.stdout])).toEqual([]);
  });

  it('client revoke run-…: the session loses its connections at once; the parent client keeps working and stays in the config', async () => {
    const s = await startRun();
    const t = await rawTlsVia(h, 'api.example.test', 443, {}, `${s.name}:${s.token}`);
    t.on('error', () => {});
    const closed = new Promise<number>((r) => t.once('close', () => r(Date.now())));
    const revoked = await cliCollect(['client', 'revoke', s.name, '--config', path.join(h.dir, 'keyswap.yaml')], { cwd: h.dir });
    const returned = Date.now();
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`ended session ${s.name}`);
    expect((await closed) - returned).toBeLessThan(1000);
    expect((await get(`agent-a:${TOKEN}`, `Authorization: Bearer ${PH}\r\n`)).slice(0, 12)).toBe('HTTP/1.1 200');
    expect(readFileSync(path.join(h.dir, 'keyswap.yaml'), 'utf8')).toContain('agent-a:');
  });

  it('revoking the parent ends its sessions too', async () => {
    const s = await startRun();
    expect((await cliCollect(['client', 'revoke', 'agent-a', '--config', path.join(h.dir, 'keyswap.yaml')], { cwd: h.dir })).code).toBe(0);
    expect((await get(`${s.name}:${s.token}`, '').catch((e: Error) => e.message))).toMatch(/407/);
  });
});
