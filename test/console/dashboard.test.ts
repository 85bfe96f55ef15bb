import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cliCollect, REPO, startCli, type CliProcess } from '../helpers/cli.js';
import { rawTlsVia } from '../helpers/clients.js';
import { askAccess } from '../../src/mcp/index.js';
import { findCanary, startHarness, waitFor, type Harness } from '../helpers/harness.js';

/*
 * Issue #28: the console in a real browser (playwright-core driving Debian's Chromium, headless): log in with the URL
 * `keyswap ui` prints, see a live decision appear within a second of a request, approve a held request and watch the
 * agent's request finish, end a session, switch lockdown on and off. As a web app: a foreign Origin, a wrong Host, no
 * cookie or no CSRF token changes nothing. Every response the browser got is searched for the canary and the
 * placeholders; a screenshot of each page is saved (build/screenshots, a CI artifact).
 */

const TOKEN = 'ks_console-agent-token-0123456789';
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const PH = 'sk-PLACEHOLDER-CONSOLE-0123456789abc';
const SHOTS = path.join(REPO, 'build', 'screenshots');
const CHROMIUM = '/usr/bin/chromium';

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/merge"], approve: { timeout_seconds: 60 } }
      - { host: api.example.test, methods: [GET], rate: "600/minute" }
`;

let h: Harness;
let run: CliProcess | null = null;
let browser: Browser | null = null;
afterEach(async () => {
  if (h !== undefined) writeFileSync(path.join(h.dir, 'stop'), '');
  await run?.stop();
  run = null;
  await h?.close();
});
afterAll(async () => { await browser?.close(); });

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    // Offline and quiet: Chromium's own background connections would be refused on this machine anyway.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  return browser;
}

async function startKeyswap(): Promise<{ consoleUrl: string; configPath: string }> {
  h = await startHarness({
    secrets: SECRETS,
    top: `ui: { listen: 127.0.0.1:0 }\nusage:\n  monthly: { secrets: [TEST_API_KEY], limit: 1000, period: month, warn_at: 90% }\nclients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n`,
  });
  const m = /console: (http:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout());
  expect(m, h.stdout()).not.toBeNull();
  return { consoleUrl: (m as RegExpExecArray)[1] as string, configPath: path.join(h.dir, 'keyswap.yaml') };
}

/** A session: `keyswap run --client agent-a` of a command that waits for the test's `stop` file. */
async function startSession(configPath: string): Promise<{ name: string; token: string }> {
  const tokenFile = path.join(h.dir, 'token');
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  run = startCli(['run', '--config', configPath, '--client', 'agent-a', '--token-file', tokenFile, '--',
    'sh', '-c', 'echo "$HTTPS_PROXY" > "$0/proxy-url"; i=0; while [ ! -f "$0/stop" ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done', h.dir], { cwd: h.dir, env: { HOME: h.dir } });
  expect(await waitFor(() => existsSync(path.join(h.dir, 'proxy-url')) && readFileSync(path.join(h.dir, 'proxy-url'), 'utf8').includes('\n'), 15_000)).toBe(true);
  const url = new URL(readFileSync(path.join(h.dir, 'proxy-url'), 'utf8').trim());
  return { name: decodeURIComponent(url.username), token: decodeURIComponent(url.password) };
}

/** One request as agent-a on its own connection; resolves with the status line once answered. */
async function agentRequest(request: string, auth = `agent-a:${TOKEN}`): Promise<string> {
  const t = await rawTlsVia(h, 'api.example.test', 443, {}, auth);
  t.on('error', () => {});
  t.write(request);
  const head = await new Promise<string>((resolve) => {
    let got = '';
    t.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n')) resolve(got.split('\r\n', 1)[0] as string);
    });
    t.once('close', () => resolve(got.split('\r\n', 1)[0] ?? ''));
  });
  t.destroy();
  return head;
}
const GET = `GET /v1/models HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\n\r\n`;
const MERGE = `POST /v1/merge HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nContent-Length: 8\r\n\r\n{"pr":7}`;

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

describe('the console in Chromium', () => {
  it('log in, watch live decisions, approve a held request, end a session, lock down and lift it; nothing secret reaches the browser', async () => {
    const { configPath } = await startKeyswap();
    const session = await startSession(configPath);
    const b = await launch();
    const context = await b.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on('dialog', (d) => { void d.accept(); });
    const bodies: string[] = [];
    page.on('response', (r) => { void r.body().then((buf) => bodies.push(`${r.url()}\n${JSON.stringify(r.headers())}\n${buf.toString('latin1')}`), () => {}); });
    // SSE bodies never finish: what the stream carried is read from the page's own table below as well.

    const ui = await cliCollect(['ui', '--config', configPath], { cwd: h.dir });
    expect(ui.code, ui.stderr).toBe(0);
    const loginUrl = /(http:\/\/\S+\/login#\S+)/.exec(ui.stdout)?.[1] as string;
    expect(loginUrl).toBeDefined();
    await page.goto(loginUrl);
    await page.waitForURL(/\/$/);
    await page.waitForSelector('#conn:text("live")');
    // The token was for one use: the same link again is refused.
    const again = await (await b.newContext()).newPage();
    await again.goto(loginUrl);
    await again.waitForSelector('#login-status:text("unknown, used or expired")');

    // Live: a decision appears within a second of the request.
    expect(await agentRequest(GET)).toBe('HTTP/1.1 200 OK');
    const answeredAt = Date.now();
    await page.waitForSelector('#decisions tr.d-allowed >> text=/v1', { timeout: 5000 });
    const shownAfterMs = Date.now() - answeredAt;
    console.log(`console: a decision appeared ${shownAfterMs} ms after the agent's answer`);
    expect(shownAfterMs).toBeLessThan(1000);
    await shot(page, 'live');
    // What agents choose (a path) is shown as text, never run: markup in a request path stays inert.
    await agentRequest(`GET /v1/<img/src=x/onerror=window.__xss=1> HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\n\r\n`);
    await page.waitForSelector('#decisions td:has-text("<img")', { timeout: 5000 });
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.$('#decisions img')).toBeNull();

    // Approvals: the held request finishes once approved in the page.
    const held = agentRequest(MERGE);
    await page.goto(new URL('/#approvals', page.url()).href);
    await page.waitForSelector('#approvals button.approve', { timeout: 5000 });
    expect(h.upstream.requests.filter((r) => r.url === '/v1/merge')).toEqual([]);
    await shot(page, 'approvals');
    await page.click('#approvals button.approve');
    expect(await held).toBe('HTTP/1.1 200 OK');
    expect(h.auditRecords().some((r) => r.type === 'approval' && r.step === 'granted' && r.by === 'ui')).toBe(true);

    // An agent's access request: listed with its reason as text (markup inert), the command that accepts it, and Decline.
    const asked = await askAccess(`http://agent-a:${TOKEN}@127.0.0.1:${h.proxyPort}`, { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['DELETE'], reason: 'cleanup <img src=x onerror=window.__xss=2>' });
    expect(asked.ok, asked.text).toBe(true);
    const accessId = /ar-[0-9a-f]{8}/.exec(asked.text)?.[0] as string;
    await page.waitForSelector(`#access-requests >> text=keyswap approve ${accessId}`, { timeout: 5000 });
    expect(await page.$('#access-requests img')).toBeNull();
    await shot(page, 'access-requests');
    await page.click('#access-requests button.deny');
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'access_request' && r.access_id === accessId && r.step === 'declined' && r.by === 'ui'), 5000)).toBe(true);

    // Clients and sessions: end the session from the page.
    await page.goto(new URL('/#clients', page.url()).href);
    await page.waitForSelector(`#clients >> text=${session.name}`);
    await shot(page, 'clients');
    await page.click(`#clients tr:has-text("${session.name}") button`);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'operator' && r.actor === 'ui' && r.action === 'session_ended' && r.target === session.name), 5000)).toBe(true);
    await expect(agentRequest(GET, `${session.name}:${session.token}`)).rejects.toThrow(/407/);

    await page.goto(new URL('/#usage', page.url()).href);
    await page.waitForSelector('#usage >> text=monthly');
    await shot(page, 'usage');
    await page.goto(new URL('/#audit', page.url()).href);
    await page.click('#verify');
    await page.waitForSelector('#audit-verified:text("intact")');
    await shot(page, 'audit');
    await page.goto(new URL('/#bindings', page.url()).href);
    await page.fill('#x-url', 'https://api.example.test/v1/merge?secret=1');
    await page.selectOption('#x-method', 'POST');
    await page.selectOption('#x-secret', 'TEST_API_KEY');
    await page.fill('#x-client', 'agent-a');
    await page.click('#explain button[type=submit]');
    await page.waitForSelector('#x-out:text("injected at header authorization")');
    expect(await page.textContent('#x-out')).toMatch(/^POST https:\/\/api\.example\.test\/v1\/merge\?…/);
    await shot(page, 'bindings');

    // Lockdown from the page: red, requests carrying a secret refused; lifted: served again.
    await page.fill('#lockdown-reason', 'console test');
    await page.click('#lockdown-toggle');
    await page.waitForSelector('#lockdown.on');
    expect(await agentRequest(GET)).toBe('HTTP/1.1 503 Service Unavailable');
    await page.goto(new URL('/#live', page.url()).href);
    await page.waitForSelector('#decisions >> text=lockdown');
    await shot(page, 'lockdown');
    await page.click('#lockdown-toggle');
    await page.waitForSelector('#lockdown.off');
    expect(await agentRequest(GET)).toBe('HTTP/1.1 200 OK');
    expect(h.auditRecords().filter((r) => r.type === 'operator' && r.actor === 'ui').map((r) => r.action)).toEqual(['ui_login', 'session_ended', 'lockdown', 'lockdown_off']);

    // Nothing secret ever reached the browser: responses, and what the page shows (the SSE stream's rows).
    const shown = await page.evaluate(() => document.documentElement.outerHTML);
    for (const text of [...bodies, shown]) {
      expect(text).not.toContain(h.canary);
      expect(text).not.toContain(PH);
      expect(text).not.toContain(session.token);
      expect(text).not.toContain(TOKEN);
    }
    expect(findCanary(h, [...bodies, shown])).toEqual([]);
    await context.close();
  }, 120_000);

  it('web security: a wrong Host, no cookie, a foreign Origin or a missing page token changes nothing; the cookie alone reads nothing', async () => {
    const { consoleUrl, configPath } = await startKeyswap();
    const port = new URL(consoleUrl).port;
    const ui = await cliCollect(['ui', '--config', configPath], { cwd: h.dir });
    const token = decodeURIComponent(/#(\S+)/.exec(ui.stdout)?.[1] ?? '');
    const origin = `http://127.0.0.1:${port}`;
    const login = await fetch(`${consoleUrl}/session`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
    expect(login.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
    // The page's token comes once, in the login answer; no endpoint hands it to a cookie.
    const csrf = ((await login.json()) as { csrf: string }).csrf;
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await fetch(`${consoleUrl}/api/session`, { headers: { cookie } })).status).toBe(401);
    const lockdown = (headers: Record<string, string>): Promise<Response> => fetch(`${consoleUrl}/api/v1/lockdown`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ on: true, reason: 'attack' }) });

    // The page itself is served with the strict policy.
    const page = await fetch(`${consoleUrl}/`);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).not.toMatch(/<script>|\sstyle=|\son[a-z]+=/);

    // DNS rebinding: the right cookie, Origin and CSRF token under another Host name.
    const http = await import('node:http');
    const rebound = await new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: Number(port), path: '/api/v1/lockdown', method: 'POST', headers: { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}`, cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.end(JSON.stringify({ on: true }));
    });
    expect(rebound).toBe(421);
    expect((await lockdown({ origin, 'x-csrf-token': csrf })).status).toBe(401); // no cookie
    expect((await lockdown({ origin: 'http://evil.example', cookie, 'x-csrf-token': csrf })).status).toBe(403);
    expect((await lockdown({ cookie, 'x-csrf-token': csrf })).status).toBe(403); // no Origin
    expect((await lockdown({ origin, cookie })).status).toBe(401); // no page token
    expect((await lockdown({ origin, cookie, 'x-csrf-token': `${csrf}x` })).status).toBe(401);
    expect((await fetch(`${consoleUrl}/api/v1/status`)).status).toBe(401);
    // The cookie alone reads nothing either (a server an agent runs on another loopback port gets the cookie).
    expect((await fetch(`${consoleUrl}/api/v1/status`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${consoleUrl}/api/v1/status`, { headers: { cookie, 'x-csrf-token': csrf } })).status).toBe(200);
    // The console cannot mint sessions or login links for itself.
    expect((await fetch(`${consoleUrl}/api/v1/sessions`, { method: 'POST', headers: { origin, cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ parent: 'agent-a', command: 'x' }) })).status).toBe(404);
    expect((await fetch(`${consoleUrl}/api/v1/ui/login`, { method: 'POST', headers: { origin, cookie, 'x-csrf-token': csrf } })).status).toBe(404);
    expect(h.auditRecords().filter((r) => r.type === 'operator' && r.action === 'lockdown')).toEqual([]);
    expect(await agentRequest(GET)).toBe('HTTP/1.1 200 OK');
    // And with everything right, it works (the checks above refused for their own reason).
    expect((await lockdown({ origin, cookie, 'x-csrf-token': csrf })).status).toBe(200);
    expect(await agentRequest(GET)).toBe('HTTP/1.1 503 Service Unavailable');
  });
});
