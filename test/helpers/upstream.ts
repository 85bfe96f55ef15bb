import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The header lines as received, repeated ones apart (Node joins some, Cookie among them, in `headers`). */
  readonly rawHeaders: readonly string[];
  /** The audit file as it was the moment this request's head arrived: proof of K5 ordering. */
  readonly auditAtArrival: string;
  bodyBytes: number;
  bodySha256: string;
  aborted: boolean;
  /** The upstream finished writing its response. */
  responseDone: boolean;
  /** The audit file the moment the first body byte arrived (K5 for body injection). */
  auditAtFirstBodyByte: string | null;
  body: Buffer;
}

/** What /v1/respond answers; chunks are base64 so any bytes (compressed ones) fit. */
export interface RespondSpec {
  readonly status?: number;
  readonly reason?: string;
  readonly headers?: Record<string, string>;
  readonly chunks?: readonly string[];
}

/** The x-respond header value for a spec. */
export function respondHeader(spec: RespondSpec): string {
  return Buffer.from(JSON.stringify(spec)).toString('base64url');
}

export interface Upstream {
  readonly port: number;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A real HTTPS (or HTTP) server on 127.0.0.1 standing in for an API. Routes:
 * /v1/echo → JSON {method, url, headers}; /v1/big?mb=N → N MiB; /v1/reset → head + part of a body, then a reset;
 * /v1/slow → holds the response until the client leaves; /v1/upload → {bytes, sha256} of the body;
 * /v1/echo-header → echoes the Authorization header back in a response header and body; /v1/echo-stream →
 * answers before reading the body, then echoes it; /v1/store and /v1/stored → keeps a body for a later GET;
 * /v1/respond → the response described by the x-respond header (respondHeader()).
 */
export async function startUpstream(opts: { tls: { certPem: string; keyPem: string } | null; auditPath?: string }): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  let stored = Buffer.alloc(0);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let auditAtArrival = '';
    if (opts.auditPath) {
      try {
        auditAtArrival = readFileSync(opts.auditPath, 'utf8');
      } catch {
        auditAtArrival = '';
      }
    }
    const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, auditAtArrival, bodyBytes: 0, bodySha256: '', aborted: false, responseDone: false, auditAtFirstBodyByte: null, body: Buffer.alloc(0) };
    requests.push(seen);
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      if (seen.auditAtFirstBodyByte === null && opts.auditPath) seen.auditAtFirstBodyByte = readFileSync(opts.auditPath, 'utf8');
      seen.bodyBytes += c.length;
      hash.update(c);
      if (seen.bodyBytes <= 1024 * 1024) kept.push(c); // keep small bodies for byte-exact checks
    });
    res.on('close', () => {
      if (!res.writableFinished) seen.aborted = true;
    });
    res.on('finish', () => {
      seen.responseDone = true;
    });
    if (req.url === '/v1/echo-stream') {
      // Answers at once, before reading the body, then echoes the body as it arrives.
      res.writeHead(200, { 'content-type': 'text/plain' });
      req.pipe(res);
      return;
    }
    req.on('end', () => {
      seen.bodySha256 = hash.digest('hex');
      seen.body = Buffer.concat(kept);
      const url = new URL(req.url ?? '/', 'http://x');
      switch (url.pathname) {
        case '/v1/big': {
          const mb = Number(url.searchParams.get('mb') ?? '1');
          const chunk = Buffer.alloc(1024 * 1024, 0x61);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(mb * chunk.length) });
          let sent = 0;
          const pump = (): void => {
            while (sent < mb) {
              sent++;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          pump();
          return;
        }
        case '/v1/reset':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
          res.write('x'.repeat(1000));
          setTimeout(() => res.socket?.destroy(), 50);
          return;
        case '/v1/slow':
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('started\n');
          return; // never ends: the client's departure closes it
        case '/v1/store':
          stored = Buffer.from(seen.body);
          res.writeHead(204);
          res.end();
          return;
        case '/v1/stored':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(stored);
          return;
        case '/v1/respond': {
          // The response the test asks for, in x-respond (base64url JSON): any status, reason, headers, body chunks.
          const spec = JSON.parse(Buffer.from(String(req.headers['x-respond'] ?? ''), 'base64url').toString()) as RespondSpec;
          res.writeHead(spec.status ?? 200, spec.reason ?? 'OK', spec.headers ?? {});
          for (const chunk of spec.chunks ?? []) res.write(Buffer.from(chunk, 'base64'));
          res.end();
          return;
        }
        case '/v1/upload':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ bytes: seen.bodyBytes, sha256: seen.bodySha256 }));
          return;
        case '/v1/echo-forms': {
          // Every encoding an API might echo a credential back in.
          const token = String(req.headers['x-api-key'] ?? req.headers.authorization ?? '').replace(/^Bearer /, '');
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(
            [token, Buffer.from(token).toString('base64'), Buffer.from(token).toString('base64url'), encodeURIComponent(token), JSON.stringify({ token })].join('\n'),
          );
          return;
        }
        case '/v1/echo-gzip': {
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
          res.end(gzipSync(JSON.stringify({ headers: req.headers })));
          return;
        }
        case '/v1/echo-split': {
          // The echo arrives three bytes at a time, so every match spans chunk boundaries.
          const body = Buffer.from(JSON.stringify({ headers: req.headers }));
          res.writeHead(200, { 'content-type': 'application/json' });
          let at = 0;
          const next = (): void => {
            if (at >= body.length) return void res.end();
            res.write(body.subarray(at, at + 3));
            at += 3;
            setImmediate(next);
          };
          next();
          return;
        }
        case '/v1/sse': {
          // Server-sent events: the first event must reach the agent before the second is even written.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: first\n\n');
          setTimeout(() => res.end('data: second\n\n'), 300);
          return;
        }
        case '/v1/chat/completions': {
          // Just enough of OpenAI's chat API for its SDK: a completion, or a streamed one as server-sent events.
          const body = JSON.parse(seen.body.toString() || '{}') as { stream?: boolean };
          const base = { id: 'chatcmpl-test', created: 0, model: 'test-model' };
          if (!body.stream) {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'hello from upstream' } }] }));
            return;
          }
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const words = ['hello', ' from', ' a', ' stream'];
          let i = 0;
          const next = (): void => {
            if (i === words.length) return void res.end('data: [DONE]\n\n');
            res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: words[i++] }, finish_reason: null }] })}\n\n`);
            setTimeout(next, 20);
          };
          next();
          return;
        }
        case '/v1/echo-header':
          res.writeHead(200, { 'content-type': 'application/json', 'x-echo': String(req.headers['x-api-key'] ?? req.headers.authorization ?? '') });
          res.end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
          return;
        default:
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
      }
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
