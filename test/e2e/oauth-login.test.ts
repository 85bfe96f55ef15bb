import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/secrets/index.js';
import { startAuthorizationServer, type AuthorizationServer } from '../helpers/authorization-server.js';
import { cli, startCli } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';

/*
 * Issue #30, item 2: `keyswap oauth login NAME`. A local authorization server that checks PKCE, the loopback
 * redirect and rotation; the test plays the user's browser. The refresh token lands in the store (never on the
 * terminal), then mints through keyswap; a callback with a state keyswap did not send is never exchanged; a
 * refusal by the server ends the login with its error.
 */
const PH = 'gh-oauth-PLACEHOLDER-0123456789abcdef';
const CLIENT_ID = 'keyswap-login-client';
const CLIENT_SECRET = 'login-client-secret-0123456789';

let testCa: TestCa;
let as: AuthorizationServer;
let h: Harness;
let config = '';

beforeAll(async () => {
  testCa = createTestCa();
  as = await startAuthorizationServer({ tls: testCa.issue(['auth.example.test']), host: 'auth.example.test', clients: { [CLIENT_ID]: CLIENT_SECRET } });
  h = await startHarness({
    testCa,
    backend: 'backend: { type: file }',
    resolve: { 'auth.example.test:443': `127.0.0.1:${as.port}` },
    secrets: `
  LINEAR:
    placeholder: "${PH}"
    inject: { type: oauth2_refresh, issuer: "https://auth.example.test", token_url: "https://auth.example.test/token", client_id_secret: LOGIN_CLIENT_ID, client_secret_secret: LOGIN_CLIENT_SECRET, refresh_token_secret: LINEAR_REFRESH, scopes: [read, write] }
    bindings: [{ host: api.example.test }]
`,
  });
  config = path.join(h.dir, 'keyswap.yaml');
  for (const [name, value] of [['LOGIN_CLIENT_ID', CLIENT_ID], ['LOGIN_CLIENT_SECRET', CLIENT_SECRET]]) {
    const r = cli(['secret', 'set', name as string, '--config', config], { input: value });
    expect(r.status, r.stderr).toBe(0);
  }
}, 60_000);
afterAll(async () => {
  await h?.close();
  await as?.close();
});

/** The user's browser: a GET to the authorization server (by its name, dialled on loopback), redirects not followed. */
function browse(url: string): Promise<{ status: number; location: string | null; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: as.port, servername: u.hostname, path: `${u.pathname}${u.search}`, headers: { host: u.host }, ca: testCa.certPem }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? null, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
const callback = async (url: string): Promise<{ status: number; body: string }> => {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
};
const stored = async (): Promise<string | undefined> => (await readStore(path.join(h.dir, 'state/secrets.enc'), { kind: 'keyfile', path: path.join(h.dir, 'state/store.key') })).entries.get('LINEAR_REFRESH')?.value;

describe('keyswap oauth login', () => {
  it('authorization code with PKCE and a loopback redirect: the refresh token is stored, never printed, and mints through keyswap', async () => {
    const login = startCli(['oauth', 'login', 'LINEAR', '--config', config, '--no-browser'], { cwd: h.dir, env: { HOME: h.dir } });
    const [authorizeUrl] = await login.waitForStdout(/https:\/\/auth\.example\.test\/authorize\?\S+/);
    const asked = new URL(authorizeUrl as string);
    expect(Object.fromEntries(asked.searchParams)).toMatchObject({ response_type: 'code', client_id: CLIENT_ID, code_challenge_method: 'S256', scope: 'read write' });
    expect(asked.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(asked.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // A page that guessed the port sends a callback with its own state and code: answered 400, never exchanged.
    const forged = await callback(`${asked.searchParams.get('redirect_uri')}?code=attacker-code&state=attacker-state`);
    expect(forged.status).toBe(400);
    expect(as.calls).toEqual([]);

    // The user authorizes: the server redirects the browser to keyswap's loopback callback.
    const authorized = await browse(asked.href);
    expect(authorized.status).toBe(302);
    const done = await callback(authorized.location as string);
    expect(done).toEqual({ status: 200, body: 'keyswap has the refresh token; you can close this page.\n' });
    expect(await login.closed).toBe(0);
    expect(login.stdout()).toContain('stored a refresh token for LINEAR as LINEAR_REFRESH (file backend)');
    // The server checked client authentication, the redirect URI and the PKCE verifier.
    expect(as.calls).toEqual([{ grant: 'authorization_code', ok: true, why: null }]);
    const refresh = as.current.get(CLIENT_ID) as string;
    expect(await stored()).toBe(refresh);
    expect(login.stdout() + login.stderr()).not.toContain(refresh);
    expect(login.stdout() + login.stderr()).not.toContain(CLIENT_SECRET);

    // The running keyswap reads it after a reload, and mints an access token from it.
    expect(cli(['reload', '--config', config]).status).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    const r = await curlVia(h, 'https://api.example.test/v1/after-login', { headers: [`Authorization: Bearer ${PH}`] });
    expect(r.status, r.body).toBe(200);
    expect(String(h.upstream.requests.at(-1)?.headers.authorization)).toMatch(/^Bearer at-/);
    expect(as.calls.at(-1)).toEqual({ grant: 'refresh_token', ok: true, why: null });
    expect(h.auditText()).not.toContain(refresh);
  }, 60_000);

  it('a refusal by the authorization server ends the login with its error, and nothing is stored', async () => {
    const before = await stored();
    const login = startCli(['oauth', 'login', 'LINEAR', '--config', config, '--no-browser'], { cwd: h.dir, env: { HOME: h.dir } });
    const [authorizeUrl] = await login.waitForStdout(/https:\/\/auth\.example\.test\/authorize\?\S+/);
    const asked = new URL(authorizeUrl as string);
    const denied = await callback(`${asked.searchParams.get('redirect_uri')}?error=access_denied&state=${asked.searchParams.get('state')}`);
    expect(denied.status).toBe(400);
    expect(await login.closed).toBe(1);
    expect(login.stderr()).toContain('the authorization server refused: access_denied');
    expect(await stored()).toBe(before);
  }, 60_000);

  it('refuses a secret that is not oauth2_refresh, and a backend it cannot write, before anyone is sent to log in', async () => {
    const r = cli(['oauth', 'login', 'NOPE', '--config', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no secret named NOPE (secrets: LINEAR)');
  });
});
