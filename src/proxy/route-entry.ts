import type http from 'node:http';
import { parseAuthority } from '../wire/index.js';
import { admit, refuseUnrouted, type ProxyContext } from './entries.js';
import { Exchange } from './exchange.js';
import { runPipeline } from './pipeline.js';
import { Refusal } from './refusal.js';

export const ROUTE_PREFIX = '/p/';
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * Base-URL mode: `/p/<route>/rest` goes to the route's https origin as `/rest`, through the same pipeline as
 * proxied requests. Only a loopback Host is accepted (a DNS-rebinding page names its own host), and nothing a
 * browser marks as coming from a web page (Origin, Sec-Fetch-Site): an agent's SDK sends neither.
 */
export function handleRoute(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const reply = { kind: 'response', res } as const;
  const url = req.url ?? '';
  const end = url.indexOf('/', ROUTE_PREFIX.length);
  const name = end < 0 ? url.slice(ROUTE_PREFIX.length).split('?')[0] ?? '' : url.slice(ROUTE_PREFIX.length, end);
  const path = end < 0 ? `/${url.slice(ROUTE_PREFIX.length + name.length)}` : url.slice(end);
  const snap = ctx.deps.snapshot();
  const route = snap.config.routes.get(name);
  if (route === undefined) {
    refuseUnrouted(ctx, req, reply, 'unknown_route');
    return;
  }
  const place = { scheme: 'https', host: route.host, port: route.port, sni: route.host, isRoute: true } as const;
  const early = (code: 'browser_request' | 'route_host_not_loopback'): void =>
    new Exchange(ctx.deps, snap, req.method ?? '', { ...place, client: null }, path, reply).refuse(new Refusal(code));
  if (req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined) return early('browser_request');
  const hostName = parseAuthority(req.headers.host ?? '')?.host;
  if (hostName === undefined || !LOOPBACK_NAMES.has(hostName)) return early('route_host_not_loopback');
  const ex = admit(ctx, req, reply, place, path);
  if (ex !== null) ctx.deps.live.watch(req.socket, ex.target?.client ?? null);
  if (ex === null || ex.target === null) return;
  void runPipeline(ex, ex.target, req, { kind: 'response', res }, path);
}
