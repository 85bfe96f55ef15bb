import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface SeenH2Request {
  readonly method: string;
  readonly path: string;
  readonly httpVersion: string;
  readonly headers: http2.IncomingHttpHeaders;
  readonly auditAtArrival: string;
  aborted: boolean;
}

export interface H2Upstream {
  readonly port: number;
  readonly requests: SeenH2Request[];
  close(): Promise<void>;
}

/**
 * A real HTTPS server on 127.0.0.1 that offers h2 (and HTTP/1.1 for clients that ask for it). Routes:
 * /v1/echo → JSON {method, path, httpVersion, headers}; /v1/trailers → a body, then trailers echoing the
 * Authorization header; /v1/reset → a head and part of a body, then RST_STREAM; /v1/slow → holds the stream.
 */
export async function startH2Upstream(opts: { tls: { certPem: string; keyPem: string }; auditPath: () => string }): Promise<H2Upstream> {
  const requests: SeenH2Request[] = [];
  const server = http2.createSecureServer({ cert: opts.tls.certPem, key: opts.tls.keyPem, allowHTTP1: true });
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const seen: SeenH2Request = { method: req.method, path: req.url, httpVersion: req.httpVersion, headers: req.headers, auditAtArrival: readFileSync(opts.auditPath(), 'utf8'), aborted: false };
    requests.push(seen);
    req.on('aborted', () => { seen.aborted = true; });
    res.on('close', () => { if (!res.writableEnded) seen.aborted = true; });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url.split('?')[0];
      if (path === '/v1/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.addTrailers({ 'x-echo-auth': String(req.headers.authorization ?? ''), 'grpc-status': '0' });
        res.end('body before trailers\n');
        return;
      }
      if (path === '/v1/reset') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial ');
        setTimeout(() => res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 50);
        return;
      }
      if (path === '/v1/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('waiting ');
        return;
      }
      const body = JSON.stringify({ method: req.method, path: req.url, httpVersion: req.httpVersion, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'x-echo-auth': String(req.headers.authorization ?? '') });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Sessions are closed by their clients (keyswap, when the harness stops); do not wait on them forever.
      setTimeout(resolve, 2_000).unref();
    }),
  };
}
