import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from './registry.js';

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/** `GET /metrics` on its own loopback port (`--metrics HOST:PORT`); nothing else is served there. */
export async function startMetricsServer(host: string, port: number, registry: Registry): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && req.url?.split('?')[0] === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : registry.render());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('keyswap metrics: GET /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
