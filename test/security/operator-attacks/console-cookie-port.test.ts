import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { agentGet, control, sha } from './util.js';

/*
 * The console's session cookie has no port (cookies never do): Chromium sends it to ANY http://127.0.0.1:PORT. An
 * agent that serves a page on loopback (its dev server, "open http://127.0.0.1:3000 to check") receives the cookie
 * in the request headers the moment the operator looks. The cookie alone then buys everything: GET /api/session
 * hands out the CSRF token with no Origin check, and a non-browser client writes whatever Origin it likes. The agent
 * approves its own held request (or lifts a lockdown, revokes other clients).
 */
const PH = 'sk-PLACEHOLDER-ATK28B-CKI-0123456789abc';
const TOKEN = 'ks_attack28b-cookie-0123456789abcdef';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/merge"], approve: { timeout_seconds: 3 } }
`;
let h: Harness;
let browser: Browser | null = null;
let evil: http.Server | null = null;
afterEach(async () => {
  await browser?.close();
  evil?.close();
  await h?.close();
});

function call(port: number, method: string, p: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: p, agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let got = '';
      res.on('data', (c: Buffer) => { got += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: got }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

describe('operator attacks: the console cookie on another loopback port', () => {
  it('an agent-served loopback page the operator opens cannot turn into approving the agent\'s own request', async () => {
    h = await startHarness({ secrets: SECRETS, top: `ui: { listen: 127.0.0.1:0 }\nclients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n` });
    const port = Number(/console: http:\/\/127\.0\.0\.1:(\d+)/.exec(h.stdout())?.[1]);
    const host = `127.0.0.1:${port}`;
    // The agent's "dev server".
    let stolen = '';
    evil = http.createServer((req, res) => { stolen ||= req.headers.cookie ?? ''; res.end('<h1>my app</h1>'); });
    await new Promise<void>((r) => evil?.listen(0, '127.0.0.1', () => r()));
    const evilPort = (evil.address() as AddressInfo).port;

    // The operator logs in to the console, then looks at the agent's page in another tab.
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'] });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const url = String((await control(h, 'POST', '/v1/ui/login')).body.url);
    await page.goto(url);
    await page.waitForURL(/\/$/);
    const tab = await ctx.newPage();
    await tab.goto(`http://127.0.0.1:${evilPort}/`);
    expect(stolen).toMatch(/keyswap_console=/);

    // The agent: a held request, then the console API with the stolen cookie.
    const held = agentGet(h, `agent-a:${TOKEN}`, `POST /v1/merge HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const cookie = stolen.split(';').map((s) => s.trim()).find((s) => s.startsWith('keyswap_console=')) as string;
    const s = await call(port, 'GET', '/api/session', { host, cookie });
    let csrf = '';
    try { csrf = (JSON.parse(s.body) as { csrf?: string }).csrf ?? ''; } catch { /* refused */ }
    const list = await call(port, 'GET', '/api/v1/approvals', { host, cookie });
    let id = 'none';
    try { id = (JSON.parse(list.body) as { approvals: { id: string }[] }).approvals[0]?.id ?? 'none'; } catch { /* refused */ }
    const approve = await call(port, 'POST', `/api/v1/approvals/${id}/approve`, { host, cookie, origin: `http://${host}`, 'x-csrf-token': csrf, 'content-type': 'application/json' }, '{}');
    const got = await held;
    const sent = h.upstream.requests.filter((r) => r.url === '/v1/merge' && r.headers.authorization === `Bearer ${h.canary}`).length;
    expect({ approveStatus: approve.status, agentStatus: got.slice(0, 12), sent }).toEqual({ approveStatus: 401, agentStatus: 'HTTP/1.1 403', sent: 0 });
    expect(findCanary(h, [got])).toEqual([]);
  }, 60_000);
});
