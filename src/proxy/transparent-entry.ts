import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { ClientSpec } from '../config/index.js';
import { routeConnect } from './connect-route.js';
import type { ProxyContext } from './entries.js';
import { Exchange } from './exchange.js';
import { startH2Session } from './h2-entry.js';
import { OUTCOMES, Refusal } from './refusal.js';
import { peerUid } from './peer-uid.js';

/**
 * An agent's connection the egress lock redirected here (`keyswap egress lock --transparent`): the agent has no
 * proxy settings, so its TLS SNI names the destination, and the connection is served exactly as a CONNECT to that
 * name on port 443 would be, by the same policy, audit and scrubbing. Node's own TLS parser reads the SNI (in the
 * SNI callback, before any certificate is chosen); a hello with no SNI gets no certificate and fails. Only a
 * destination keyswap decrypts is served: anything else is refused (audited), never tunnelled blind.
 */
export function handleTransparent(ctx: ProxyContext, socket: Socket, uid: number, client: () => { readonly ok: boolean; readonly client: ClientSpec | null }): void {
  // No resume(): the TLS socket takes the connection over from its handle, hello and all.
  ownedBy(ctx, socket, uid, 443, () => serveTls(ctx, socket, client));
}

/**
 * A connection the egress lock redirected from port 80 (`transparent.listen_http`): plain HTTP, each request
 * served as an absolute-form `http://HOST/…` request naming its Host header, by the inner server that parses
 * decrypted connections (decrypted-entry.ts says how the Host header becomes the destination).
 */
export function handleTransparentHttp(ctx: ProxyContext, socket: Socket, uid: number, client: () => { readonly ok: boolean; readonly client: ClientSpec | null }): void {
  ownedBy(ctx, socket, uid, 80, () => {
    const who = client();
    if (!who.ok) {
      new Exchange(ctx.deps, ctx.deps.snapshot(), 'GET', null, '/', { kind: 'socket', socket }).refuse(new Refusal('proxy_auth_required'));
      return;
    }
    ctx.plain.set(socket, { client: who.client });
    ctx.deps.live.watch(socket, who.client);
    socket.resume();
    ctx.inner.emit('connection', socket);
  });
}

/**
 * Owner lookups waiting at once: past this a connection is closed unread, so a flood is not queued without end. High
 * enough that a flood of another user's connections (each one lookup, all served by one table read per batch) does
 * not crowd out the agent's own: measured at 256, 64 threads dialling in a loop got the agent's connection dropped.
 */
const MAX_PENDING_LOOKUPS = 4096;
let pendingLookups = 0;
/** Refusals of other users are recorded at most once a second; the rest are counted into the next record's log line. */
let lastRefusalMs = 0;
let refusalsSince = 0;

/**
 * Served only for the locked agent's user: any other local process dialling a transparent port is not that agent.
 * Nothing is read meanwhile (a paused socket keeps what the agent sent in the kernel for whoever takes it over).
 */
function ownedBy(ctx: ProxyContext, socket: Socket, uid: number, redirectedFrom: number, serve: () => void): void {
  socket.on('error', () => socket.destroy());
  socket.pause();
  if (pendingLookups >= MAX_PENDING_LOOKUPS) {
    socket.destroy();
    return;
  }
  pendingLookups++;
  peerUid({ address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, listenAddress: socket.localAddress ?? '', listenPort: socket.localPort ?? 0, redirectedFrom }).then((owner) => {
    if (socket.destroyed) return;
    if (owner !== uid) {
      refusalsSince++;
      const now = Date.now();
      if (now - lastRefusalMs >= 1_000) {
        ctx.deps.log.warn({ peer_uid: owner, expected_uid: uid, refused: refusalsSince }, 'transparent connection not from the agent\'s user refused');
        new Exchange(ctx.deps, ctx.deps.snapshot(), 'CONNECT', null, '/', { kind: 'socket', socket }).note({ type: 'deny', decision: 'denied', reason: 'proxy_auth_required', status: 407 });
        lastRefusalMs = now;
        refusalsSince = 0;
      }
      socket.destroy();
      return;
    }
    serve();
  }, () => socket.destroy()).finally(() => { pendingLookups--; });
}

function serveTls(ctx: ProxyContext, socket: Socket, client: () => { readonly ok: boolean; readonly client: ClientSpec | null }): void {
  const snap = ctx.deps.snapshot();
  const { timeouts } = snap.config;
  let target: { host: string; client: ClientSpec | null } | null = null;
  const tlsSocket = new tls.TLSSocket(socket, {
    isServer: true,
    ALPNProtocols: ['h2', 'http/1.1'],
    SNICallback: (servername, cb) => {
      const name = servername.toLowerCase();
      const route = routeConnect(`${name}:443`, ctx.deps.snapshot().policy);
      const who = client();
      const place = { scheme: 'https' as const, host: route.kind === 'bad_target' ? '-' : name, port: 443, sni: name, client: who.client, isRoute: false };
      // Refused in TLS (no certificate: the agent sees a handshake alert), recorded as any refusal is.
      const refuse = (code: 'proxy_auth_required' | 'unbound_destination' | 'bad_request' | 'self_destination'): void => {
        new Exchange(ctx.deps, ctx.deps.snapshot(), 'CONNECT', place, '/', { kind: 'socket', socket }).note({ type: 'deny', decision: 'denied', reason: code, status: OUTCOMES[code][0] });
        cb(new Error(code));
      };
      if (!who.ok) return refuse('proxy_auth_required');
      if (route.kind === 'bad_target') return refuse('bad_request');
      if (route.kind !== 'mitm') return refuse('unbound_destination');
      const dial = ctx.deps.snapshot().upstream.dialAddress(name, 443);
      if (ctx.deps.isSelf(dial.host, dial.port)) return refuse('self_destination');
      ctx.leaves.get(route.leafName).then(
        (context) => {
          target = { host: route.host, client: who.client };
          cb(null, context);
        },
        (err: unknown) => cb(err as Error),
      );
    },
  });
  const timer = setTimeout(() => tlsSocket.destroy(), timeouts.tlsHandshakeMs).unref();
  tlsSocket.once('error', () => tlsSocket.destroy());
  tlsSocket.once('close', () => clearTimeout(timer));
  tlsSocket.once('secure', () => {
    clearTimeout(timer);
    if (target === null) {
      tlsSocket.destroy();
      return;
    }
    // Everything on this connection acts as the transparent listener's client, and goes when it is revoked.
    ctx.deps.live.watch(socket, target.client);
    const state = { host: target.host, port: 443, client: target.client };
    ctx.states.set(tlsSocket, state);
    if (tlsSocket.alpnProtocol === 'h2') startH2Session(ctx, tlsSocket, state, ctx.deps.snapshot());
    else ctx.inner.emit('connection', tlsSocket);
  });
}
