import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';

/*
 * Upstream MCP servers for the tool-policy attacks: the official TypeScript SDK's legacy HTTP+SSE transport
 * (GET /sse, POST /messages?sessionId=, still shipped and deployed), and a generic HTTPS server that records the
 * bytes it received (to be read as another parser would).
 */
export const TOOLS = ['search_issues', 'read_file', 'delete_repo'] as const;

export interface Recorded {
  readonly port: number;
  readonly received: { readonly path: string; readonly authorization: string | null; readonly contentType: string | null; readonly body: Buffer }[];
  readonly ran: { tool: string; authorization: string | null }[];
  close(): Promise<void>;
}

/** The official SDK's SSEServerTransport behind `Authorization: Bearer token`, as its README wires it. */
export async function startLegacySse(tls: { readonly cert: string; readonly key: string }, token: string): Promise<Recorded> {
  const received: Recorded['received'] = [];
  const ran: Recorded['ran'] = [];
  const transports = new Map<string, SSEServerTransport>();
  let lastAuth: string | null = null;
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'https://x');
      if (req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(401).end();
        return;
      }
      lastAuth = req.headers.authorization ?? null;
      if (req.method === 'GET' && url.pathname === '/sse') {
        const t = new SSEServerTransport('/messages', res);
        transports.set(t.sessionId, t);
        const s = new McpServer({ name: 'legacy', version: '1.0.0' });
        for (const tool of TOOLS) {
          s.registerTool(tool, { description: tool }, () => {
            ran.push({ tool, authorization: lastAuth });
            return { content: [{ type: 'text', text: `ran ${tool}` }] };
          });
        }
        await s.connect(t);
        return;
      }
      if (req.method === 'POST' && url.pathname === '/messages') {
        // Recorded (head only): the transport reads the body itself (raw-body, with the charset it is told).
        received.push({ path: url.pathname, authorization: req.headers.authorization ?? null, contentType: req.headers['content-type'] ?? null, body: Buffer.alloc(0) });
        const t = transports.get(url.searchParams.get('sessionId') ?? '');
        if (t === undefined) {
          res.writeHead(404).end();
          return;
        }
        await t.handlePostMessage(req, res);
        return;
      }
      res.writeHead(404).end();
    })().catch(() => { if (!res.headersSent) res.writeHead(500).end(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port, received, ran,
    close: async () => {
      for (const t of transports.values()) await t.close().catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An HTTPS server that records every request's bytes and answers `answer` (default: an empty JSON-RPC result). */
export async function startRecorder(tls: { readonly cert: string; readonly key: string }, answer?: (path: string, body: Buffer) => { status: number; headers: Record<string, string>; body: string }): Promise<Recorded> {
  const received: Recorded['received'] = [];
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      received.push({ path, authorization: req.headers.authorization ?? null, contentType: req.headers['content-type'] ?? null, body });
      const a = answer?.(path, body) ?? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"result":{}}' };
      res.writeHead(a.status, a.headers).end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port, received, ran: [],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
