import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { admitConnection, type ConnState, type ProxyContext } from './entries.js';
import { runPipeline } from './pipeline.js';
import type { Snapshot } from './snapshot.js';

/**
 * HTTP/2 limits, part of keyswap's contract like the HTTP/1.1 ones (listener.ts): 100 concurrent streams per
 * connection, a 16 KiB header list (as HTTP/1.1's 16 KiB head), 128 header fields, 32 MiB of session memory, no
 * server push. Node (20.12.1 and later) bounds the floods of recent years itself: rapid reset (CVE-2023-44487)
 * and CONTINUATION floods (CVE-2024-27983) end the session; `maxSessionInvalidFrames` and
 * `maxSessionRejectedStreams` close a peer that keeps sending what is refused. An idle session is closed after
 * `timeouts.keep_alive_seconds`.
 */
export function h2Options(): http2.ServerOptions {
  return {
    maxSessionMemory: 32,
    maxHeaderListPairs: 128,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    settings: { maxConcurrentStreams: 100, maxHeaderListSize: 16 * 1024, enablePush: false },
  };
}

/**
 * Hands a decrypted connection whose agent chose h2 in ALPN to the HTTP/2 server, with its CONNECT facts: each
 * stream then goes through the same pipeline as an HTTP/1.1 request on that connection.
 */
export function startH2Session(ctx: ProxyContext, socket: TLSSocket, state: ConnState, snap: Snapshot): void {
  const onSession = (session: ServerHttp2Session): void => {
    ctx.h2States.set(session, { ...state, sni: typeof socket.servername === 'string' ? socket.servername : null });
    ctx.h2Sessions.add(session);
    session.once('close', () => ctx.h2Sessions.delete(session));
    session.on('error', () => session.destroy());
    session.setTimeout(snap.config.timeouts.keepAliveMs, () => session.close());
  };
  ctx.inner2.once('session', onSession);
  // A TLSSocket made server-side by hand (not by a tls.Server) keeps secureConnecting true after its handshake,
  // and an HTTP/2 session on it would wait for a 'secureConnect' that server sockets never emit.
  (socket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
  // The CONNECT socket is half-open-capable (an HTTP server's); HTTP/2 has no half-close, so an agent's FIN is its
  // leaving, and its streams are reset rather than left waiting for the keep-alive timeout.
  socket.once('end', () => socket.destroy());
  ctx.inner2.emit('connection', socket);
  ctx.inner2.off('session', onSession);
}

/** One stream: its destination is the connection's CONNECT target, never `:authority`, which the pipeline checks against it (K3). */
export function handleH2(ctx: ProxyContext, req: Http2ServerRequest, res: Http2ServerResponse): void {
  const state = ctx.h2States.get(req.stream.session as ServerHttp2Session);
  if (state === undefined) {
    req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const ex = admitConnection(ctx, req, { kind: 'response', res }, { scheme: 'https', host: state.host, port: state.port, sni: state.sni, client: state.client, isRoute: false });
  if (ex === null || ex.target === null) return;
  void runPipeline(ex, ex.target, req, { kind: 'response', res }, req.url ?? '');
}
