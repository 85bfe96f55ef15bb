import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '../audit/index.js';
import { handleControl, json, type ControlDeps } from '../control/index.js';
import { ConsoleSessions, SESSION_TTL_MS, sameToken } from './sessions.js';

const ASSETS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assets');
const COOKIE = 'keyswap_console';

/** What the page may load: its own scripts, styles and API, nothing inline, nothing from elsewhere, never framed. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

const STATIC: Readonly<Record<string, readonly [file: string, type: string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/login': ['login.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/login.js': ['login.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8'],
};

/** The control API routes the console may use: no sessions (those are keyswap run's), no login tokens. */
const UI_ROUTES: readonly RegExp[] = [
  /^GET \/v1\/(status|events|approvals)$/,
  /^POST \/v1\/lockdown$/,
  /^POST \/v1\/clients\/[^/]+\/revoke$/,
  /^POST \/v1\/approvals\/[0-9a-f-]{8,36}\/(approve|deny)$/,
  // An access request is declined here; accepting one writes the config file, which only the operator's CLI does.
  /^POST \/v1\/access-requests\/ar-[0-9a-f]{8}\/decline$/,
  /^POST \/v1\/explain$/,
  /^POST \/v1\/audit\/verify$/,
];

export interface RunningConsole {
  readonly url: string;
  /** A one-time login token for `keyswap ui` (through the control socket). */
  issueLogin(): string;
  close(): Promise<void>;
}

/**
 * The operator's console: static pages (assets/) and the control API under /api, for a browser on this machine.
 * As a web app: every request's Host must name this listener (DNS rebinding); the API needs both the session
 * cookie (HttpOnly, SameSite=Strict) that a one-time login token buys and the session's token in a header, which
 * only the page that logged in holds; a change also needs the page's own Origin; a strict Content-Security-Policy
 * forbids anything not served here.
 */
export async function startConsole(at: { readonly host: string; readonly port: number }, deps: ControlDeps, audit: (e: AuditEvent) => Promise<void>): Promise<RunningConsole> {
  const sessions = new ConsoleSessions();
  const assets = new Map(Object.entries(STATIC).map(([route, [file, type]]) => [route, { body: readFileSync(path.join(ASSETS, file)), type }]));
  let hosts = new Set<string>();
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 0 }, (req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    serve(req, res).catch(() => {
      if (!res.headersSent) text(res, 500, 'internal error');
      else res.destroy();
    });
  });
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = req.headers.host ?? '';
    if (!hosts.has(host.toLowerCase())) return text(res, 421, 'keyswap console: this Host is not the console\'s address');
    const url = req.url ?? '/';
    const pathOnly = url.split('?', 1)[0] ?? '/';
    const method = req.method ?? 'GET';
    const asset = method === 'GET' ? assets.get(pathOnly) : undefined;
    if (asset !== undefined) {
      res.writeHead(200, { 'content-type': asset.type, 'content-length': String(asset.body.length) });
      res.end(asset.body);
      return;
    }
    const sid = cookieOf(req);
    const changes = method !== 'GET' && method !== 'HEAD';
    // A change must come from this console's own page: its Origin, and (after login) the session's CSRF token.
    if (changes && req.headers.origin !== `http://${host}`) return text(res, 403, 'keyswap console: a change must come from the console\'s own page (Origin)');
    if (method === 'POST' && pathOnly === '/session') {
      const body = await readSmall(req);
      const token = typeof body?.token === 'string' ? body.token : '';
      const s = sessions.login(token);
      if (s === null) return json(res, 401, { error: 'this login link is unknown, used or expired: run keyswap ui for a new one' });
      await audit({ type: 'operator', actor: 'ui', action: 'ui_login', target: null, reason: null }).catch(() => {});
      res.setHeader('set-cookie', `${COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`);
      // The page's own secret, in the answer only: it keeps it in sessionStorage, which is per origin (port
      // included). A cookie is not: the browser sends it to every port of 127.0.0.1, so a server an agent runs
      // there gets it. The cookie alone therefore opens nothing, reads included.
      return json(res, 200, { csrf: s.csrf });
    }
    const session = sessions.session(sid);
    if (session === null || !sameToken(header(req, 'x-csrf-token'), session.csrf)) return json(res, 401, { error: 'not logged in on this page: run keyswap ui for a login link' });
    if (method === 'POST' && pathOnly === '/logout') {
      sessions.logout(sid);
      res.setHeader('set-cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
      return json(res, 200, { ok: true });
    }
    if (!pathOnly.startsWith('/api/')) return text(res, 404, 'keyswap console: not found');
    const route = pathOnly.slice('/api'.length);
    if (!UI_ROUTES.some((r) => r.test(`${method} ${route}`))) return json(res, 404, { error: `no such console endpoint: ${method} ${route}` });
    await handleControl(req, res, route, 'ui', deps);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const bracketed = at.host.includes(':') ? `[${at.host}]` : at.host;
  hosts = new Set([`${bracketed}:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].map((h) => h.toLowerCase()));
  return {
    url: `http://${bracketed}:${port}`,
    issueLogin: () => sessions.issueLogin(),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function cookieOf(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return v.join('=');
  }
  return null;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readSmall(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  let body = '';
  for await (const c of req as AsyncIterable<Buffer>) {
    body += c.toString('utf8');
    if (body.length > 4096) return null;
  }
  try {
    const v = JSON.parse(body) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body) + 1) });
  res.end(`${body}\n`);
}
