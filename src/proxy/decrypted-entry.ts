import type http from 'node:http';
import { TLSSocket } from 'node:tls';
import { admitConnection, type ProxyContext } from './entries.js';
import { runPipeline } from './pipeline.js';

/**
 * A request on a decrypted connection: its destination is the connection's CONNECT target, never the Host
 * header or the SNI, which the pipeline checks against it (K3).
 */
export function handleDecrypted(ctx: ProxyContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const socket = req.socket;
  const state = socket instanceof TLSSocket ? ctx.states.get(socket) : undefined;
  if (!(socket instanceof TLSSocket) || state === undefined) {
    res.destroy();
    return;
  }
  const sni = typeof socket.servername === 'string' ? socket.servername : null;
  const ex = admitConnection(ctx, req, res, { scheme: 'https', host: state.host, port: state.port, sni, client: state.client, isRoute: false });
  if (ex === null || ex.target === null) return;
  void runPipeline(ex, ex.target, req, res, req.url ?? '');
}
