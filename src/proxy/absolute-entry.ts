import type http from 'node:http';
import { isBoundDestination } from '../policy/index.js';
import { parseAuthority } from '../wire/index.js';
import { admit, type ProxyContext } from './entries.js';
import { runPipeline } from './pipeline.js';
import { Refusal } from './refusal.js';

/** An absolute-form `http://host[:port]/path?query` request line: plain-http proxying. */
export function handleAbsolute(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse, url: AbsoluteUrl): void {
  const place = { scheme: 'http', host: url.host, port: url.port, sni: null, isRoute: false } as const;
  const ex = admit(ctx, req, { kind: 'response', res }, place, url.path);
  if (ex === null || ex.target === null) return;
  if (ex.snap.policy.unmatchedDestinationPolicy === 'deny' && !isBoundDestination(ex.snap.policy, url.host, url.port, 'http')) {
    ex.refuse(new Refusal('unbound_destination'));
    return;
  }
  void runPipeline(ex, ex.target, req, res, url.path);
}

export interface AbsoluteUrl { readonly host: string; readonly port: number; readonly path: string }

/** Parses `http://host[:port]/path?query`; null for anything else (userinfo included). */
export function parseAbsoluteUrl(url: string): AbsoluteUrl | null {
  if (!url.startsWith('http://')) return null;
  const rest = url.slice('http://'.length);
  const slash = rest.search(/[/?]/);
  const authorityText = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '/' : rest[slash] === '?' ? `/${rest.slice(slash)}` : rest.slice(slash);
  if (authorityText.includes('@')) return null;
  const authority = parseAuthority(authorityText);
  if (authority === null) return null;
  return { host: authority.host, port: authority.port ?? 80, path };
}
