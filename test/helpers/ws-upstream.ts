import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** One WebSocket the upstream accepted: its handshake, the audit file at that moment, and every message it got. */
export interface SeenSocket {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly auditAtHandshake: string;
  readonly messages: { readonly data: Buffer; readonly isBinary: boolean }[];
  closed: { code: number; reason: string } | null;
  /** /ws/flood: how many MiB it has handed to its socket so far. */
  floodSentMb: number;
}

export interface WsUpstream {
  readonly port: number;
  readonly seen: SeenSocket[];
  close(): Promise<void>;
}

/**
 * A real WSS server on 127.0.0.1 standing in for a realtime API. Paths: /ws/echo echoes every message as it came
 * (text or binary); /ws/echo-auth first sends the handshake's Authorization header as a text message;
 * /ws/reject answers the handshake 401 with the Authorization header in the body; /ws/close-4001 closes at once
 * with 4001 'bye'; /ws/flood?mb=N sends N messages of 1 MiB as fast as the socket takes them. Subprotocol: the
 * last one offered.
 */
export async function startWsUpstream(opts: { tls: { certPem: string; keyPem: string }; auditPath: () => string }): Promise<WsUpstream> {
  const seen: SeenSocket[] = [];
  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: true, // offered to the peer: keyswap must decline it
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (protocols) => [...protocols].at(-1) ?? false,
  });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://x');
    if (url.pathname === '/ws/reject') {
      const body = `no: ${req.headers.authorization ?? ''}`;
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\nx-seen-auth: ${req.headers.authorization ?? ''}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    const record: SeenSocket = { path: url.pathname + url.search, headers: req.headers, auditAtHandshake: readFileSync(opts.auditPath(), 'utf8'), messages: [], closed: null, floodSentMb: 0 };
    seen.push(record);
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        record.messages.push({ data, isBinary });
        if (url.pathname === '/ws/echo' || url.pathname === '/ws/echo-auth') ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code, reason) => { record.closed = { code, reason: reason.toString() }; });
      ws.on('error', () => ws.terminate());
      if (url.pathname === '/ws/echo-auth') ws.send(`auth=${req.headers.authorization ?? ''}`);
      if (url.pathname === '/ws/close-4001') ws.close(4001, 'bye');
      if (url.pathname === '/ws/flood') {
        const total = Number(url.searchParams.get('mb') ?? '1');
        const chunk = Buffer.alloc(1024 * 1024, 0x61);
        let sent = 0;
        const pump = (): void => {
          while (sent < total && ws.bufferedAmount < 4 * 1024 * 1024) {
            sent++;
            record.floodSentMb = sent;
            ws.send(chunk, { binary: true });
          }
          if (sent < total) setTimeout(pump, 5);
        };
        pump();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
