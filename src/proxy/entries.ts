import type http from 'node:http';
import type { Http2ServerRequest, Http2Server, ServerHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ClientSpec } from '../config/index.js';
import { authenticate } from './client-auth.js';
import { peerIdentity } from './peer-identity.js';
import { Exchange, type ExchangeDeps, type Reply, type Target } from './exchange.js';
import type { LeafSource } from './mitm.js';
import { Refusal } from './refusal.js';
import type { Snapshot } from './snapshot.js';

/** The facts a decrypted connection carries for its requests: its CONNECT target and who opened it. */
export interface ConnState {
  readonly host: string;
  readonly port: number;
  readonly client: ClientSpec | null;
}

/** What every entry mode shares: the exchange dependencies and the listener's per-connection state. */
export interface ProxyContext {
  readonly deps: ExchangeDeps;
  readonly leaves: LeafSource;
  /** The one inner server that parses every decrypted connection. */
  readonly inner: http.Server;
  /** Per decrypted socket: its CONNECT target, owned here and never patched onto Node's objects. */
  readonly states: WeakMap<TLSSocket, ConnState>;
  /**
   * Plain-HTTP sockets the egress lock redirected from port 80 (transparent.listen_http): who they are. Each
   * request's destination is its Host header on port 80, as an absolute-form http:// request would name it.
   */
  readonly plain: WeakMap<Duplex, { readonly client: ClientSpec | null }>;
  /** The one HTTP/2 server, for decrypted connections whose agent chose h2 in ALPN. */
  readonly inner2: Http2Server;
  /** Per HTTP/2 session: its connection's CONNECT facts and SNI. */
  readonly h2States: WeakMap<ServerHttp2Session, ConnState & { readonly sni: string | null }>;
  /** Open HTTP/2 sessions, closed on shutdown. */
  readonly h2Sessions: Set<ServerHttp2Session>;
  /** Open opaque tunnels (and upgraded WebSockets), closed on shutdown. */
  readonly tunnels: Set<Duplex>;
}

/**
 * Starts an exchange for a request or CONNECT whose destination is `place` (null: none could be read), after
 * authenticating the agent when `clients:` is configured. An agent that fails is refused here (407) and null is
 * returned: every use of the proxy is authenticated, tunnels included.
 */
export function admit(ctx: ProxyContext, req: http.IncomingMessage, reply: Reply, place: Omit<Target, 'client'> | null, path: string): Exchange | null {
  const snap = ctx.deps.snapshot();
  const auth = authenticate(req.headers['proxy-authorization'], snap.config.clients, Date.now(), peerIdentity(req.socket));
  const target = place === null ? null : { ...place, client: auth.ok ? auth.client : null };
  const ex = new Exchange(ctx.deps, snap, req.method ?? '', target, path, reply);
  if (auth.ok) return ex;
  ex.refuse(new Refusal('proxy_auth_required'));
  return null;
}

/**
 * A request on a connection authenticated at its CONNECT. The client is looked up again in the configuration in
 * force, per request: a token that expired or was rotated, or a client a reload removed or narrowed, must not keep its secrets
 * on a connection it opened before (keep-alive has no upper bound). Refused with 407 when it no longer passes.
 */
export function admitConnection(ctx: ProxyContext, req: http.IncomingMessage | Http2ServerRequest, reply: Reply, target: Target): Exchange | null {
  const snap = ctx.deps.snapshot();
  const { current, isStale } = clientNow(snap, target.client);
  const ex = new Exchange(ctx.deps, snap, req.method ?? '', { ...target, client: current }, req.url ?? '', reply);
  if (!isStale) return ex;
  ex.refuse(new Refusal('proxy_auth_required'));
  return null;
}

/**
 * The client an agent authenticated as, as the configuration in force now knows it: stale when removed, expired,
 * or given a new token (a rotation revokes the old one on open connections too).
 */
export function clientNow(snap: Snapshot, client: ClientSpec | null): { readonly current: ClientSpec | null; readonly isStale: boolean; readonly expiresAtMs: number | null } {
  const clients = snap.config.clients;
  const current = clients === null || client === null ? null : clients.get(client.name) ?? null;
  // A certificate's session ends at its notAfter (carried as the session's expiry) or the client's, the earlier.
  const expiresAtMs = current === null ? null : Math.min(current.expiresAtMs ?? Number.POSITIVE_INFINITY, client?.expiresAtMs ?? Number.POSITIVE_INFINITY);
  const isStale = clients !== null && (current === null || current.tokenSha256 !== client?.tokenSha256 || current.spiffeId !== client.spiffeId
    || (expiresAtMs !== null && Date.now() >= expiresAtMs));
  return { current, isStale, expiresAtMs: expiresAtMs === Number.POSITIVE_INFINITY ? null : expiresAtMs };
}

/** Refuses a request that no entry mode accepts, from the one table. */
export function refuseUnrouted(ctx: ProxyContext, req: http.IncomingMessage, reply: Reply, code: 'not_a_proxy_request' | 'bad_request' | 'unknown_route'): void {
  new Exchange(ctx.deps, ctx.deps.snapshot(), req.method ?? '', null, '/', reply).refuse(new Refusal(code));
}
