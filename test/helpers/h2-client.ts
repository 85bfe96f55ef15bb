import http2 from 'node:http2';
import tls from 'node:tls';
import { rawTlsVia } from './clients.js';
import type { Harness } from './harness.js';

/** An HTTP/2 session to `host` through keyswap's CONNECT, trusting keyswap's CA: the agent's view. */
export async function h2Via(h: Harness, host: string): Promise<http2.ClientHttp2Session> {
  const socket = await rawTlsVia(h, host, 443, { ALPNProtocols: ['h2'] });
  if (socket.alpnProtocol !== 'h2') throw new Error(`keyswap did not negotiate h2 (got ${String(socket.alpnProtocol)})`);
  const session = http2.connect(`https://${host}`, { createConnection: () => socket as tls.TLSSocket });
  session.on('error', () => {});
  return session;
}

export interface H2Result { readonly status: number; readonly headers: http2.IncomingHttpHeaders; readonly body: string; readonly trailers: http2.IncomingHttpHeaders | null; readonly rstCode: number }

/** One request on a session; resolves when its stream closes, however it closes. */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Result> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    let text = '';
    stream.on('response', (h) => { status = Number(h[':status']); head = h; });
    stream.on('trailers', (t) => { trailers = t; });
    stream.on('data', (c: Buffer) => { text += c.toString(); });
    stream.on('error', () => {});
    stream.on('close', () => resolve({ status, headers: head, body: text, trailers, rstCode: stream.rstCode ?? 0 }));
    if (body !== undefined) stream.end(body);
  });
}
