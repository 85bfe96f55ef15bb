import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.js';
import { startCli } from '../../helpers/cli.js';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { createTestCa, type TestCa } from '../../helpers/test-ca.js';

/*
 * Attack review of `keyswap oauth login --mcp URL` against a malicious MCP server / authorization server.
 *  1. The issuer named in the protected resource metadata is only checked to start with https:// and is printed
 *     raw (error and success messages): terminal escape sequences (OSC 52 clipboard writes, title, cursor moves,
 *     hiding text) reach the operator's terminal. oauth4webapi compares issuers as normalised URLs, so the raw
 *     string may hold ESC/BEL in its path even on the success path.
 *  2. The token endpoint is only checked to start with https://; keyswap.yaml is written (writeFileAtomic) before
 *     loadConfig validates it, so a token_endpoint the config schema refuses (a fragment, userinfo) leaves the
 *     operator's keyswap.yaml unloadable: the next start or reload of keyswap fails, for every secret.
 */
let testCa: TestCa;
let h: Harness;
let server: https.Server;
let port = 0;
const RESOURCE = 'https://mcp.evil.test/mcp';
const state: { issuerInPrm: string; tokenEndpoint: string } = { issuerInPrm: 'https://auth.evil.test', tokenEndpoint: 'https://auth.evil.test/token' };

beforeAll(async () => {
  testCa = createTestCa();
  const tls = testCa.issue(['mcp.evil.test', 'auth.evil.test']);
  server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const json = (status: number, body: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      if (req.headers.host === 'mcp.evil.test' && url.pathname === '/.well-known/oauth-protected-resource/mcp') return json(200, { resource: RESOURCE, authorization_servers: [state.issuerInPrm] });
      if (url.pathname === '/.well-known/oauth-authorization-server' && state.issuerInPrm === 'https://auth.evil.test') {
        return json(200, { issuer: 'https://auth.evil.test', authorization_endpoint: 'https://auth.evil.test/authorize', token_endpoint: state.tokenEndpoint, registration_endpoint: 'https://auth.evil.test/register', response_types_supported: ['code'] });
      }
      if (url.pathname === '/register') return json(201, { client_id: 'evil-client-0123456789', redirect_uris: (JSON.parse(body) as { redirect_uris: string[] }).redirect_uris });
      if (url.pathname === '/token') return json(200, { access_token: 'at-evil-0123456789abcdef', token_type: 'Bearer', expires_in: 3600, refresh_token: 'rt-evil-0123456789abcdef' });
      return json(404, { error: 'not_found' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  h = await startHarness({ testCa, backend: 'backend: { type: file }', resolve: { 'auth.evil.test:443': `127.0.0.1:${port}`, 'mcp.evil.test:443': `127.0.0.1:${port}` } });
}, 60_000);
afterAll(async () => {
  await h?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

describe('oauth login --mcp: what a malicious server controls', () => {
  it('never writes the server\'s control characters (ESC, BEL) to the operator\'s terminal', async () => {
    state.issuerInPrm = 'https://auth.evil.test/\u001b]52;c;ZWNobyBwd25lZA==\u0007\u001b[2K\rregistered keyswap at https://accounts.google.com';
    try {
      const config = path.join(h.dir, 'keyswap.yaml');
      const login = startCli(['oauth', 'login', '--mcp', RESOURCE, '--name', 'EVIL_ESC', '--config', config, '--no-browser', '--timeout', '20'], { cwd: h.dir, env: { HOME: h.dir } });
      expect(await login.closed).not.toBe(0);
      const out = login.stdout() + login.stderr();
      expect(out).toContain('auth.evil.test');
      // eslint-disable-next-line no-control-regex
      expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    } finally {
      state.issuerInPrm = 'https://auth.evil.test';
    }
  }, 60_000);

  it('a token_endpoint keyswap\'s own config refuses never leaves keyswap.yaml unloadable', async () => {
    state.tokenEndpoint = 'https://auth.evil.test/token#frag';
    const config = path.join(h.dir, 'keyswap.yaml');
    const before = readFileSync(config, 'utf8');
    const login = startCli(['oauth', 'login', '--mcp', RESOURCE, '--name', 'EVIL_FRAG', '--config', config, '--no-browser', '--timeout', '20'], { cwd: h.dir, env: { HOME: h.dir } });
    // keyswap may refuse the metadata before asking anyone to log in; if it does ask, the user completes the login.
    const asked = await login.waitForStdout(/https:\/\/auth\.evil\.test\/authorize\?\S+/).then((m) => new URL(m[0]), () => null);
    if (asked !== null) {
      // The user's browser follows the authorization server's redirect back to keyswap.
      const cb = new URL(asked.searchParams.get('redirect_uri') as string);
      cb.searchParams.set('code', 'code-0123456789');
      cb.searchParams.set('state', asked.searchParams.get('state') as string);
      await fetch(cb).catch(() => null);
    }
    const code = await login.closed;
    // Whatever keyswap decided, the operator's keyswap.yaml must still load (as before the login, or with a valid secret).
    const loaded = await loadConfig(config).then(() => 'loads', (err: Error) => `broken: ${err.message}`);
    expect(loaded, `exit ${code}\n${login.stdout()}\n${login.stderr()}`).toBe('loads');
    expect(before.length).toBeGreaterThan(0);
  }, 60_000);
});
