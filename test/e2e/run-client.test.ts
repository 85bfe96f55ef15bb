import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliCollect, type CliResult } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

// Issue #13: with clients: configured, `keyswap run` and `keyswap env` hand the agent a proxy URL that carries its
// identity, so its requests are not all answered 407.
const TOKEN = `ks_${'Tk9'.repeat(14)}x`;
let h: Harness;
let tokenFile: string;
const config = () => path.join(h.dir, 'keyswap.yaml');
const run = (args: string[], env: Record<string, string> = {}) => cli(args, { cwd: h.dir, env: { HOME: h.dir, ...env } });

/** Not blocking: the test upstream lives in this process, so its event loop must keep turning while the agent runs. */
const runAsync = (args: string[]): Promise<CliResult> => cliCollect(args, { cwd: h.dir, env: { HOME: h.dir } });

beforeAll(async () => {
  h = await startHarness({ top: `clients:\n  agent1:\n    token_sha256: "${createHash('sha256').update(TOKEN).digest('hex')}"\n    secrets: [TEST_API_KEY]` });
  tokenFile = path.join(h.dir, 'agent1.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await h.close();
});

describe('keyswap run / env with clients: configured', () => {
  const fetchScript = "const r = await fetch('https://api.example.test/v1/echo', { headers: { authorization: 'Bearer ' + process.env.TEST_API_KEY } }); console.log(r.status)";

  it('run --client NAME --token-file F: the agent’s requests carry its identity and get the secret injected', async () => {
    const r = await runAsync(['run', '--config', config(), '--client', 'agent1', '--token-file', tokenFile, '--', process.execPath, '--input-type=module', '-e', fetchScript]);
    expect(r.stdout.trim(), r.stderr).toBe('200');
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('node:https under run --client: the preload sends the identity from the proxy URL with its CONNECT', async () => {
    const script = "require('node:https').get('https://api.example.test/v1/echo', { headers: { authorization: 'Bearer ' + process.env.TEST_API_KEY } }, (r) => { r.resume(); console.log(r.statusCode); }).on('error', (e) => console.log(e.message))";
    const r = await runAsync(['run', '--config', config(), '--client', 'agent1', '--token-file', tokenFile, '--', process.execPath, '-e', script]);
    expect(r.stdout.trim(), r.stderr).toBe('200');
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('the token may come from $KEYSWAP_CLIENT_TOKEN; env prints the credentialed proxy URL in every spelling', () => {
    const r = run(['env', '--config', config(), '--client', 'agent1'], { KEYSWAP_CLIENT_TOKEN: TOKEN });
    expect(r.status, r.stderr).toBe(0);
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) {
      expect(r.stdout).toMatch(new RegExp(`^export ${name}='http://agent1:${TOKEN}@127\\.0\\.0\\.1:\\d+'$`, 'm'));
    }
    expect(r.stdout).toContain(`export TEST_API_KEY='${PLACEHOLDER}'`);
  });

  it('without --client, or with a wrong token, run refuses before starting anything, naming the fix', () => {
    const none = run(['run', '--config', config(), '--', 'true']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('names clients (agent1): pass --client NAME');
    const wrong = run(['run', '--config', config(), '--client', 'agent1', '--', 'true'], { KEYSWAP_CLIENT_TOKEN: 'ks_wrong' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("that token is not this client's");
    expect(wrong.stderr).not.toContain('ks_wrong');
  });
});
