import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { routeConnect } from './connect-route.js';
import { admit, refuseUnrouted, type ProxyContext } from './entries.js';
import { errorSummary } from './exchange.js';
import { startH2Session } from './h2-entry.js';
import { terminateTls } from './mitm.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { openTunnel } from './tunnel.js';

/** CONNECT: decrypt a bound destination, tunnel or refuse the rest (K7). Refusals go out in the socket form. */
export function handleConnect(ctx: ProxyContext, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', destroyOnError);
  const reply = { kind: 'socket', socket } as const;
  const snap = ctx.deps.snapshot();
  const route = routeConnect(req.url, snap.policy);
  if (route.kind === 'bad_target') {
    refuseUnrouted(ctx, req, reply, 'bad_request');
    return;
  }
  const ex = admit(ctx, req, reply, { scheme: 'https', host: route.host, port: route.port, sni: null, isRoute: false }, '/');
  if (ex === null) return;
  // Everything this connection will carry (decrypted requests, an HTTP/2 session, a tunnel) acts as its client.
  ctx.deps.live.watch(socket, ex.target?.client ?? null);
  if (route.kind === 'deny') {
    ex.refuse(new Refusal('unbound_destination'));
    return;
  }
  if (ex.isLoop) {
    ex.refuse(new Refusal('self_destination'));
    return;
  }
  const { timeouts, upstream } = ex.snap.config;
  if (route.kind === 'tunnel') {
    ctx.tunnels.add(socket);
    const dialled = ex.snap.upstream.dialer.tcp(route, ex.snap.upstream.dialAddress(route.host, route.port), upstream.connectTimeoutMs);
    openTunnel(socket, head, dialled, { idleMs: timeouts.tunnelIdleMs }, {
      opened: () => ex.notePassthrough(),
      failed: (err) => ex.refuse(upstreamRefusal(err), 'tunnel_failed'),
      closed: () => ctx.tunnels.delete(socket),
    });
    return;
  }
  ctx.leaves.get(route.leafName).then(
    (context) => {
      if (socket.destroyed) return;
      const tlsSocket = terminateTls(socket, head, context, timeouts.tlsHandshakeMs);
      const state = { host: route.host, port: route.port, client: ex.target?.client ?? null };
      ctx.states.set(tlsSocket, state);
      // The agent's ALPN choice picks the parser: HTTP/2's server, or the one HTTP/1.1 server.
      tlsSocket.once('secure', () => {
        if (tlsSocket.alpnProtocol === 'h2') startH2Session(ctx, tlsSocket, state, ex.snap);
        else ctx.inner.emit('connection', tlsSocket);
      });
    },
    (err: unknown) => {
      ex.log.error({ err: errorSummary(err), host: route.host }, 'TLS termination failed');
      ex.refuse(new Refusal('internal', { cause: err }));
    },
  );
}

/**
 * The socket's error listener lives as long as the connection: a closure made in handleConnect would share its
 * scope and keep the CONNECT request and its exchange reachable for all that time (measured: idle connections).
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}
