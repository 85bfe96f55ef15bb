import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** One CONNECT the parent proxy saw, with every byte it relayed each way. */
export interface SeenConnect {
  readonly authority: string;
  readonly proxyAuthorization: string | undefined;
  readonly status: number;
  up: Buffer;
  down: Buffer;
}

export interface ParentProxy {
  readonly port: number;
  readonly url: string;
  readonly seen: SeenConnect[];
  close(): Promise<void>;
}

/**
 * A corporate-style parent proxy on 127.0.0.1: answers CONNECT (407 without the expected Basic credentials),
 * relays bytes and keeps them, so a test can show it saw a host and port and never a request. It resolves names
 * itself, as a parent does, through `resolve` ("host:port" → "127.0.0.1:port", e.g. a harness's own map); a name it
 * cannot resolve gets 502 with no lookup. `redirectTo` makes it a hostile parent that connects every tunnel to
 * another address.
 */
export async function startParentProxy(opts: { credentials?: string; redirectTo?: () => { host: string; port: number }; resolve?: () => Readonly<Record<string, string>> } = {}): Promise<ParentProxy> {
  const seen: SeenConnect[] = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(405, { connection: 'close' });
    res.end('CONNECT only\n');
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const authority = req.url ?? '';
    const auth = req.headers['proxy-authorization'];
    const expected = opts.credentials === undefined ? undefined : `Basic ${Buffer.from(opts.credentials).toString('base64')}`;
    const record: SeenConnect = { authority, proxyAuthorization: auth, status: 0, up: Buffer.alloc(0), down: Buffer.alloc(0) };
    seen.push(record);
    client.on('error', () => client.destroy());
    if (expected !== undefined && auth !== expected) {
      (record as { status: number }).status = 407;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="corp"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    const mapped = opts.resolve?.()[authority];
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(mapped ?? authority);
    // Loopback tests only: an unmapped name is never looked up.
    const isAddress = m !== null && net.isIP(m[1] as string) !== 0;
    const to = opts.redirectTo?.() ?? (m && isAddress ? { host: m[1] as string, port: Number(m[2]) } : null);
    if (to === null) {
      (record as { status: number }).status = m === null ? 400 : 502;
      client.end(m === null ? 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n' : 'HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    const upstream = net.connect(to.port, to.host);
    upstream.on('error', () => {
      if (record.status === 0) {
        (record as { status: number }).status = 502;
        client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      } else client.destroy();
    });
    upstream.once('connect', () => {
      (record as { status: number }).status = 200;
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.on('data', (c: Buffer) => { record.up = Buffer.concat([record.up, c]); });
      upstream.on('data', (c: Buffer) => { record.down = Buffer.concat([record.down, c]); });
      client.pipe(upstream);
      upstream.pipe(client);
    });
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    sockets.add(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
