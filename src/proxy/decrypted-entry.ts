import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { parseAuthority } from '../wire/index.js';
import { admitConnection, refuseUnrouted, type ProxyContext } from './entries.js';
import type { Target } from './exchange.js';
import { runPipeline } from './pipeline.js';
import { Refusal } from './refusal.js';

/**
 * A request on a decrypted connection: its destination is the connection's CONNECT target, never the Host
 * header or the SNI, which the pipeline checks against it (K3).
 */
export function handleDecrypted(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const target = targetOf(ctx, req);
  if (target === null) {
    // A redirected port-80 request whose Host names no destination on port 80 is answered; anything else is a bug.
    if (ctx.plain.has(req.socket)) refuseUnrouted(ctx, req, { kind: 'response', res }, 'bad_request');
    else res.destroy();
    return;
  }
  const ex = admitConnection(ctx, req, { kind: 'response', res }, target);
  if (ex === null || ex.target === null) return;
  void runPipeline(ex, ex.target, req, { kind: 'response', res }, req.url ?? '');
}

/**
 * A WebSocket handshake on a decrypted connection: the same pipeline, delivered to the upgraded socket. The
 * socket is paused until the bridge reads it: frames sent early must wait, not be dropped. Any other upgrade
 * (h2c, a custom protocol) is refused.
 */
export function handleDecryptedUpgrade(ctx: ProxyContext, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.pause();
  socket.on('error', () => socket.destroy());
  const target = targetOf(ctx, req);
  if (target === null) {
    socket.destroy();
    return;
  }
  // Closed on shutdown like a tunnel: an upgraded socket is no longer the HTTP server's to close.
  ctx.tunnels.add(socket);
  socket.once('close', () => ctx.tunnels.delete(socket));
  const reply = { kind: 'socket', socket } as const;
  const ex = admitConnection(ctx, req, reply, target);
  if (ex === null || ex.target === null) return;
  if ((req.headers.upgrade ?? '').trim().toLowerCase() !== 'websocket') {
    ex.refuse(new Refusal('upgrade_unsupported'));
    return;
  }
  void runPipeline(ex, ex.target, req, { kind: 'websocket', req, socket, head }, req.url ?? '');
}

function targetOf(ctx: ProxyContext, req: http.IncomingMessage): Target | null {
  const socket = req.socket;
  const plain = ctx.plain.get(socket);
  if (plain !== undefined) {
    // Redirected from port 80: the Host header is the only name the request has (the pipeline holds the header to
    // this target, so the two cannot disagree), and it must name port 80, where the connection was going.
    const authority = parseAuthority(req.headers.host ?? '');
    if (authority === null || (authority.port !== null && authority.port !== 80)) return null;
    return { scheme: 'http', host: authority.host, port: 80, sni: null, client: plain.client, isRoute: false };
  }
  const state = socket instanceof TLSSocket ? ctx.states.get(socket) : undefined;
  if (!(socket instanceof TLSSocket) || state === undefined) return null;
  const sni = typeof socket.servername === 'string' ? socket.servername : null;
  return { scheme: 'https', host: state.host, port: state.port, sni, client: state.client, isRoute: false };
}
