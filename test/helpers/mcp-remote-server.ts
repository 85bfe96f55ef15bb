import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { ProxyAgent } from 'undici';
import { startHarness, type Harness, type HarnessOptions } from './harness.js';
import { createTestCa } from './test-ca.js';

/**
 * A remote MCP server as vendors run one: streamable HTTP (the official SDK's transport) over HTTPS, each request
 * needing `Authorization: Bearer TOKEN`, three tools. `/mcp` answers over SSE, `/mcp-json` with plain JSON. It
 * records every body it received and every tool it actually ran: what a tool policy must keep from it.
 */
export const REMOTE_TOOLS = ['search_issues', 'read_file', 'delete_repo'] as const;

export interface McpRemote {
  readonly port: number;
  /** Every request body as received, in order (with its path and authorization). */
  readonly received: { readonly path: string; readonly authorization: string | null; readonly body: string }[];
  /** The tools the server ran. */
  readonly ran: string[];
  close(): Promise<void>;
}

export async function startMcpRemote(tls: { readonly cert: string; readonly key: string }, token: string): Promise<McpRemote> {
  const received: McpRemote['received'] = [];
  const ran: string[] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const mcpServer = (): McpServer => {
    const s = new McpServer({ name: 'remote-example', version: '1.0.0' });
    for (const tool of REMOTE_TOOLS) {
      s.registerTool(tool, { description: `the ${tool} tool` }, () => {
        ran.push(tool);
        return { content: [{ type: 'text', text: `ran ${tool}` }] };
      });
    }
    return s;
  };
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        received.push({ path, authorization: req.headers.authorization ?? null, body: raw });
        if (req.headers.authorization !== `Bearer ${token}`) {
          res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
          return;
        }
        let json: unknown;
        try {
          json = raw === '' ? undefined : JSON.parse(raw);
        } catch {
          res.writeHead(400).end('not JSON');
          return;
        }
        const sid = req.headers['mcp-session-id'];
        let transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
        if (transport === undefined) {
          if (!isInitializeRequest(json)) {
            res.writeHead(400).end('no session');
            return;
          }
          const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            enableJsonResponse: path === '/mcp-json',
            onsessioninitialized: (id) => { sessions.set(id, t); },
          });
          transport = t;
          await mcpServer().connect(t);
        }
        await transport.handleRequest(req, res, json);
      })().catch(() => { if (!res.headersSent) res.writeHead(500).end(); });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    ran,
    close: async () => {
      for (const t of sessions.values()) await t.close().catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** keyswap (a harness) in front of an MCP server stand-in answering as `host`, and an agent's dispatcher through keyswap. */
export interface BehindKeyswap<S> {
  readonly h: Harness;
  readonly server: S;
  readonly agent: ProxyAgent;
  close(): Promise<void>;
}

/**
 * Starts the server with a certificate for `host` from a test CA keyswap trusts, and keyswap with `host:443` resolved
 * to it and the given secrets: the set-up every MCP policy test shares.
 */
export async function behindKeyswap<S extends { readonly port: number; close(): Promise<void> }>(
  host: string,
  start: (tls: { readonly cert: string; readonly key: string }) => Promise<S>,
  opts: Pick<HarnessOptions, 'secrets' | 'secretValues'>,
): Promise<BehindKeyswap<S>> {
  const testCa = createTestCa();
  const cert = testCa.issue([host]);
  const server = await start({ cert: cert.certPem, key: cert.keyPem });
  const h = await startHarness({ testCa, resolve: { [`${host}:443`]: `127.0.0.1:${server.port}` }, ...opts });
  const agent = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } });
  return {
    h, server, agent,
    close: async () => {
      await agent.close();
      await h.close();
      await server.close();
    },
  };
}
