import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { readStore } from '../../src/secrets/index.js';
import { readFileSync } from 'node:fs';
import { startAuthorizationServer, type AuthorizationServer } from '../helpers/authorization-server.js';
import { cli, startCli } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';

/*
 * Issue #30, item 2, `keyswap oauth login --mcp URL`: a remote MCP server stand-in that follows the MCP authorization
 * spec (protected resource metadata, RFC 9728; an authorization server with dynamic registration, RFC 7591, that
 * wants PKCE and the resource named, RFC 8707). keyswap discovers, registers, logs in, stores the client id and
 * refresh token and configures the secret; then the agent's request to the MCP server with the placeholder reaches
 * it with a real access token, which keyswap minted for that resource.
 */
let testCa: TestCa;
let as: AuthorizationServer;
let h: Harness;
let config = '';

beforeAll(async () => {
  testCa = createTestCa();
  as = await startAuthorizationServer({ tls: testCa.issue(['auth.example.test', 'mcp.example.test']), host: 'auth.example.test', clients: {}, mcp: { host: 'mcp.example.test' } });
  h = await startHarness({
    testCa,
    backend: 'backend: { type: file }',
    resolve: { 'auth.example.test:443': `127.0.0.1:${as.port}`, 'mcp.example.test:443': `127.0.0.1:${as.port}` },
    // The CA already covers the MCP server's host, as after a `keyswap ca rotate` for it.
    secrets: `
  OTHER:
    placeholder: "sk-PLACEHOLDER-OTHER-0123456789abcdef"
    inject: { header: X-Other, format: "{OTHER}" }
    bindings: [{ host: other.example.test }, { host: mcp.example.test, paths: ["/never"] }]
`,
  });
  config = path.join(h.dir, 'keyswap.yaml');
  expect(cli(['secret', 'set', 'OTHER', '--config', config], { input: 'other-value-0123456789' }).status).toBe(0);
}, 60_000);
afterAll(async () => {
  await h?.close();
  await as?.close();
});

function browse(url: string): Promise<{ status: number; location: string | null }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: as.port, servername: u.hostname, path: `${u.pathname}${u.search}`, headers: { host: u.host }, ca: testCa.certPem }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? null }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('keyswap oauth login --mcp', () => {
  it('discovers, registers a public client, logs in for the resource, and the agent\'s placeholder then reaches the MCP server as a real token', async () => {
    const login = startCli(['oauth', 'login', '--mcp', 'https://mcp.example.test/mcp', '--name', 'LINEAR_MCP', '--config', config, '--no-browser'], { cwd: h.dir, env: { HOME: h.dir } });
    const [authorizeUrl] = await login.waitForStdout(/https:\/\/auth\.example\.test\/authorize\?\S+/);
    const asked = new URL(authorizeUrl as string);
    expect(asked.searchParams.get('resource')).toBe('https://mcp.example.test/mcp');
    expect([...as.registered.keys()]).toEqual([asked.searchParams.get('client_id')]);
    const authorized = await browse(asked.href);
    expect(authorized.status).toBe(302);
    const done = await fetch(authorized.location as string);
    expect(done.status).toBe(200);
    expect(await login.closed, login.stderr()).toBe(0);
    const placeholder = /Authorization: Bearer (mcp-PLACEHOLDER-\S+)/.exec(login.stdout())?.[1] as string;
    expect(placeholder).toBeDefined();

    const store = await readStore(path.join(h.dir, 'state/secrets.enc'), { kind: 'keyfile', path: path.join(h.dir, 'state/store.key') });
    const refresh = [...as.current.values()][0] as string;
    expect(store.entries.get('LINEAR_MCP_REFRESH_TOKEN')?.value).toBe(refresh);
    expect(store.entries.get('LINEAR_MCP_CLIENT_ID')?.value).toBe(asked.searchParams.get('client_id'));
    expect(store.entries.has('LINEAR_MCP_CLIENT_SECRET')).toBe(false);
    const spec = parseConfig(readFileSync(config, 'utf8'), config).secrets.find((s) => s.name === 'LINEAR_MCP');
    expect(spec?.bindings.map((b) => b.host)).toEqual(['mcp.example.test']);
    expect(login.stdout() + login.stderr()).not.toContain(refresh);

    expect(cli(['reload', '--config', config]).status).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    const r = await curlVia(h, 'https://mcp.example.test/mcp', { method: 'POST', headers: [`Authorization: Bearer ${placeholder}`, 'Content-Type: application/json'], data: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    expect(r.status, r.body).toBe(200);
    // The MCP server saw an access token its authorization server issued (minted by keyswap from the refresh
    // token, as a public client naming the resource), never the placeholder.
    const bearer = as.mcpCalls.at(-1) as string;
    expect(bearer).toMatch(/^at-/);
    expect(as.calls.at(-1)).toEqual({ grant: 'refresh_token', ok: true, why: null });
    expect(h.auditText()).not.toContain(bearer);
  }, 60_000);
});
