import { z } from 'zod';
import type { Config, SecretSpec } from '../config/index.js';
import type { AccessAsk } from './access-request.js';

/**
 * `keyswap mcp serve`: an MCP server (stdio, the official TypeScript SDK, loaded only by this command) that an
 * agent's MCP client adds: two read-only tools, and one that asks an operator for access. It reads the
 * configuration, never the backend: no tool can return a secret's value, because this process never holds one.
 */
export interface McpDeps {
  readonly config: Config;
  /** The placeholders this agent holds: those of its environment (what its MCP client started this server with). */
  readonly held: readonly SecretSpec[];
  /** `keyswap explain` for one request, placeholders shown by their secret's name. */
  readonly explain: (q: { readonly method: string; readonly url: string; readonly headers: readonly [string, string][]; readonly secret: string | null }) => readonly string[];
  readonly version: string;
  /** Sends an access request through the proxy as this agent (access-request.ts). */
  readonly askAccess: (ask: AccessAsk) => Promise<{ readonly ok: boolean; readonly text: string }>;
}

/** What the agent may do with each placeholder it holds: where it may go, and what holds it back. */
export function statusText(deps: McpDeps): string {
  if (deps.held.length === 0) {
    return `keyswap ${deps.version}: no placeholder of ${deps.config.file} is in this environment, so nothing here would be swapped for a secret. Placeholders are set in the agent's environment (keyswap run, keyswap env).`;
  }
  const lines = [`keyswap ${deps.version}: this agent holds ${deps.held.length} placeholder(s). keyswap swaps each for its real secret only on requests that match a binding; anything else goes out with the placeholder (or is refused).`];
  for (const s of deps.held) {
    // A honeytoken is listed like any other: telling the agent which are traps would let a hijacked one avoid them.
    lines.push('', `${s.name}: placeholder ${s.placeholder}`);
    for (const b of s.bindings) {
      const extra = [b.rate === null ? null : `rate ${b.rate.count} per ${b.rate.perMs / 1000} s`, b.approve === null ? null : 'each request waits for an operator\'s approval', b.allowPlaintext ? 'plain http allowed' : null, b.mcp === null ? null : `MCP tools allowed: ${b.mcp.tools.join(' ') || 'none'}`].filter((x) => x !== null);
      lines.push(`  - https://${b.host}${b.port === null || b.port === 443 ? '' : `:${b.port}`}  methods ${b.methods?.join(' ') ?? 'any'}  paths ${b.paths?.join(' ') ?? 'any'}${extra.length === 0 ? '' : `  (${extra.join('; ')})`}`);
    }
  }
  const quotas = deps.config.usage.filter((q) => q.secrets === null || deps.held.some((s) => q.secrets?.has(s.name)));
  if (quotas.length > 0) lines.push('', `quotas: ${quotas.map((q) => `${q.name} ${q.limit} per ${q.period}`).join(', ')}`);
  return lines.join('\n');
}

/** The MCP server over stdio until the client closes it. */
export async function serveMcp(deps: McpDeps): Promise<void> {
  const [{ McpServer }, { StdioServerTransport }] = await Promise.all([import('@modelcontextprotocol/sdk/server/mcp.js'), import('@modelcontextprotocol/sdk/server/stdio.js')]);
  const server = new McpServer({ name: 'keyswap', version: deps.version });
  const readOnly = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };
  server.registerTool('keyswap_status', {
    title: 'keyswap status',
    description: 'Which keyswap placeholders this agent holds, and where each may be used (hosts, methods, paths, limits). Never returns a secret.',
    annotations: readOnly,
  }, () => ({ content: [{ type: 'text', text: statusText(deps) }] }));
  server.registerTool('keyswap_explain', {
    title: 'keyswap explain',
    description: 'What keyswap would do with a request, and why: which placeholder would be swapped for its secret, or kept and why. No request is sent and no secret is read.',
    inputSchema: {
      method: z.string().min(1).max(16).describe('HTTP method, e.g. GET'),
      url: z.string().min(1).max(4096).describe('the full URL, e.g. https://api.github.com/repos/o/r/issues'),
      headers: z.record(z.string().max(256), z.string().max(8192)).optional().describe('request headers, placeholders included'),
      secret: z.string().max(128).optional().describe('explain as if the request carried this secret\'s placeholder where it is injected'),
    },
    annotations: readOnly,
  }, (args) => ({ content: [{ type: 'text', text: deps.explain({ method: args.method, url: args.url, headers: Object.entries(args.headers ?? {}), secret: args.secret ?? null }).join('\n') }] }));
  server.registerTool('keyswap_request_access', {
    title: 'keyswap request access',
    description: 'Ask an operator for a binding this agent lacks: one of its placeholders allowed to another host (or methods, paths), with your reason. The operator sees it in keyswap approvals and the console and decides; nothing changes until then. Returns the request id, never a secret.',
    inputSchema: {
      secret: z.string().min(1).max(128).describe('the secret\'s name or its placeholder (one this agent holds; see keyswap_status)'),
      host: z.string().min(1).max(253).describe('the host to allow, e.g. api.github.com'),
      port: z.number().int().min(1).max(65_535).optional(),
      methods: z.array(z.string().min(1).max(16)).min(1).max(16).optional().describe('e.g. ["GET"]; omit for any method'),
      paths: z.array(z.string().min(1).max(512)).min(1).max(16).optional().describe('path globs, e.g. ["/repos/*/*/issues"]; omit for any path'),
      reason: z.string().min(1).max(500).describe('why the task needs it, for the operator'),
    },
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  }, async (args) => {
    const ask: AccessAsk = { secret: args.secret, host: args.host.toLowerCase(), reason: args.reason, ...(args.port === undefined ? {} : { port: args.port }), ...(args.methods === undefined ? {} : { methods: args.methods.map((m) => m.toUpperCase()) }), ...(args.paths === undefined ? {} : { paths: args.paths }) };
    const answer = await deps.askAccess(ask).catch((err: Error) => ({ ok: false, text: `keyswap could not be reached: ${err.message}` }));
    return { content: [{ type: 'text', text: answer.text }], isError: !answer.ok };
  });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => { transport.onclose = () => resolve(); });
  await server.connect(transport);
  await closed;
}
