import type http from 'node:http';
import { isLoopbackPeer, parseAuthority } from '../wire/index.js';
import { admit, type ProxyContext } from './entries.js';
import { Exchange } from './exchange.js';
import { runPipeline } from './pipeline.js';
import { Refusal } from './refusal.js';

/**
 * An absolute-form request line: `http://host[:port]/path?query` (plain-http proxying), or `https://…` as older
 * clients send it (axios before 1.21 writes `POST https://… HTTP/1.1` to the proxy instead of CONNECT). The https
 * form is served like base-URL mode: the agent's leg is plaintext, so it is accepted only from this host, and
 * keyswap's leg is TLS to the URL's host, verified as strictly as any upstream. Its destination is the URL's
 * authority, with the Host header held to it as to a CONNECT target.
 */
export function handleAbsolute(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse, url: AbsoluteUrl): void {
  const https = url.scheme === 'https';
  const place = { scheme: url.scheme, host: url.host, port: url.port, sni: https ? url.host : null, isRoute: false } as const;
  if (https && !isLoopbackPeer(req.socket.remoteAddress)) {
    new Exchange(ctx.deps, ctx.deps.snapshot(), req.method ?? '', { ...place, client: null }, url.path, { kind: 'response', res }).refuse(new Refusal('plaintext_https_not_loopback'));
    return;
  }
  const ex = admit(ctx, req, { kind: 'response', res }, place, url.path);
  if (ex !== null) ctx.deps.live.watch(req.socket, ex.target?.client ?? null);
  if (ex === null || ex.target === null) return;
  void runPipeline(ex, ex.target, req, { kind: 'response', res }, url.path);
}

export interface AbsoluteUrl { readonly scheme: 'http' | 'https'; readonly host: string; readonly port: number; readonly path: string }

/** Parses `http(s)://host[:port]/path?query`; null for anything else (userinfo included). */
export function parseAbsoluteUrl(url: string): AbsoluteUrl | null {
  const scheme = url.startsWith('http://') ? 'http' : url.startsWith('https://') ? 'https' : null;
  if (scheme === null) return null;
  const rest = url.slice(`${scheme}://`.length);
  const slash = rest.search(/[/?]/);
  const authorityText = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '/' : rest[slash] === '?' ? `/${rest.slice(slash)}` : rest.slice(slash);
  if (authorityText.includes('@')) return null;
  const authority = parseAuthority(authorityText);
  if (authority === null) return null;
  return { scheme, host: authority.host, port: authority.port ?? (scheme === 'https' ? 443 : 80), path };
}

