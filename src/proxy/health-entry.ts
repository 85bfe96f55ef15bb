import type http from 'node:http';
import type { Snapshot } from './snapshot.js';

/** `.invalid` never resolves (RFC 2606), so this name can only ever mean keyswap itself. */
export const HEALTH_HOST = 'keyswap.invalid';

/**
 * `GET http://keyswap.invalid/healthz` through the proxy: 200 while keyswap can serve injected requests, 503 once
 * the audit log has failed (every injected request is then refused). No secret, name or path in the answer.
 */
export function answerHealth(req: http.IncomingMessage, res: http.ServerResponse, snap: Snapshot, path: string): void {
  if (path !== '/healthz' || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain', connection: 'close' });
    res.end('keyswap: the only local endpoint is GET http://keyswap.invalid/healthz\n');
    return;
  }
  const healthy = snap.audit.isHealthy;
  res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ status: healthy ? 'ok' : 'audit_unavailable' }));
}
