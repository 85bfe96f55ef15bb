import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { control } from './util.js';

/*
 * Probes of the console as a web app (all expected to hold): DNS rebinding, login token reuse, CSRF from a same-site
 * page on another loopback port (SameSite=Strict sends the cookie there), no CORS, cookie-less API.
 */
let h: Harness;
afterEach(async () => { await h?.close(); });

function req(port: number, method: string, p: string, headers: Record<string, string>, body = ''): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: p, agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let got = '';
      res.on('data', (c: Buffer) => { got += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: got }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

describe('operator attacks: console web checks', () => {
  it('rebinding Host, reused login token, foreign same-site Origin, missing CSRF and no cookie change nothing', async () => {
    h = await startHarness({ top: 'ui: { listen: 127.0.0.1:0 }\n' });
    const port = Number(/console: http:\/\/127\.0\.0\.1:(\d+)/.exec(h.stdout())?.[1]);
    const url = String((await control(h, 'POST', '/v1/ui/login')).body.url);
    const token = url.split('#')[1] as string;
    const host = `127.0.0.1:${port}`;
    // DNS rebinding: attacker.example resolving to 127.0.0.1.
    expect((await req(port, 'POST', '/session', { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}`, 'content-type': 'application/json' }, JSON.stringify({ token }))).status).toBe(421);
    // A same-site page on another loopback port: refused on Origin (the token is not spent).
    expect((await req(port, 'POST', '/session', { host, origin: 'http://127.0.0.1:8000', 'content-type': 'application/json' }, JSON.stringify({ token }))).status).toBe(403);
    const login = await req(port, 'POST', '/session', { host, origin: `http://${host}`, 'content-type': 'application/json' }, JSON.stringify({ token }));
    expect(login.status).toBe(200);
    const cookie = String(login.headers['set-cookie']?.[0]).split(';')[0] as string;
    expect(cookie).toMatch(/^keyswap_console=/);
    // Reuse of the login token.
    expect((await req(port, 'POST', '/session', { host, origin: `http://${host}`, 'content-type': 'application/json' }, JSON.stringify({ token }))).status).toBe(401);
    const csrf = (JSON.parse(login.body) as { csrf: string }).csrf;
    // No CORS on reads.
    const st = await req(port, 'GET', '/api/v1/status', { host, cookie, origin: 'http://127.0.0.1:8000' });
    expect(st.headers['access-control-allow-origin']).toBeUndefined();
    // Changes: same-site foreign Origin with the cookie and the token; own Origin without the token; no cookie.
    const lock = JSON.stringify({ on: true, reason: 'x' });
    expect((await req(port, 'POST', '/api/v1/lockdown', { host, cookie, origin: 'http://127.0.0.1:8000', 'x-csrf-token': csrf, 'content-type': 'application/json' }, lock)).status).toBe(403);
    expect((await req(port, 'POST', '/api/v1/lockdown', { host, cookie, origin: `http://${host}`, 'content-type': 'application/json' }, lock)).status).toBe(401);
    expect((await req(port, 'POST', '/api/v1/lockdown', { host, origin: `http://${host}`, 'x-csrf-token': csrf, 'content-type': 'application/json' }, lock)).status).toBe(401);
    // The console may not mint login tokens or sessions of keyswap run.
    expect((await req(port, 'POST', '/api/v1/ui/login', { host, cookie, origin: `http://${host}`, 'x-csrf-token': csrf }, '{}')).status).toBe(404);
    expect((await req(port, 'POST', '/api/v1/sessions', { host, cookie, origin: `http://${host}`, 'x-csrf-token': csrf }, '{}')).status).toBe(404);
    expect((await control(h, 'GET', '/v1/status')).body.lockdown).toBeNull();
  });
});
