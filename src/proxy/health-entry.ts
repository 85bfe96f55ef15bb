import type http from 'node:http';
import type { Snapshot } from './snapshot.js';

/** `.invalid` never resolves (RFC 2606), so this name can only ever mean keyswap itself. */
export const HEALTH_HOST = 'keyswap.invalid';

/** Signs a nonce with keyswap's identity key (tls/Identity): only the real keyswap can answer /identity. */
export interface IdentityProver {
  prove(nonce: string, address: string): string;
}

/**
 * keyswap's own endpoints, reached through the proxy at `http://keyswap.invalid/…`:
 * - `GET /healthz`: 200 while keyswap can serve injected requests, 503 once the audit log has failed (every injected
 *   request is then refused). No secret, name or path in the answer.
 * - `GET /identity?nonce=<64 hex>`: keyswap's signature over the nonce and the address the connection came in on,
 *   which `keyswap run` checks against the public key install published before it sends a token or starts the
 *   agent: a process squatting on the port while keyswap is down cannot make it.
 */
export function answerHealth(req: http.IncomingMessage, res: http.ServerResponse, snap: Snapshot, path: string, identity: IdentityProver): void {
  const asked = /^\/identity\?nonce=([0-9a-f]{64})$/.exec(path);
  if (asked !== null && req.method === 'GET') {
    const address = `${(req.socket.localAddress ?? '').replace(/^::ffff:/, '')}:${req.socket.localPort ?? 0}`;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ address, proof: identity.prove(asked[1] as string, address) }));
    return;
  }
  if (path !== '/healthz' || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain', connection: 'close' });
    res.end('keyswap: the local endpoints are GET http://keyswap.invalid/healthz, GET /identity?nonce=<64 hex> and POST /v1/access-requests\n');
    return;
  }
  const healthy = snap.audit.isHealthy;
  res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ status: healthy ? 'ok' : 'audit_unavailable' }));
}
