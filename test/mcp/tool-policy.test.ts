import { gzipSync } from 'node:zlib';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fetch as undiciFetch, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES } from '../../src/proxy/refusal.js';
import { curlVia } from '../helpers/clients.js';
import { findCanary, waitFor, type Harness } from '../helpers/harness.js';
import { behindKeyswap, startMcpRemote, type McpRemote } from '../helpers/mcp-remote-server.js';

/*
 * Issue #30, item 4: a binding's `mcp: { tools }` for a remote MCP server (streamable HTTP, the official SDK on
 * both ends). keyswap reads the JSON-RPC of every request to that server: an allowed call goes with the real
 * token, any other call (alone, or smuggled in a batch) gets a JSON-RPC error and nothing goes upstream, audited
 * with the tool's name; answers listing tools (SSE and JSON) hide the refused ones; a body keyswap cannot read
 * exactly as a server would is refused, never passed.
 */
const PH = 'mcp-PLACEHOLDER-remote-0123456789abcdef';
const TOKEN = `remote-mcp-token-${'c4n4ry'.repeat(4)}`;

let h: Harness;
let remote: McpRemote;
let agent: ProxyAgent;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, agent, close } = await behindKeyswap('mcp.example.test', (tls) => startMcpRemote(tls, TOKEN), {
    secretValues: { REMOTE_MCP: TOKEN },
    secrets: `
  REMOTE_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {REMOTE_MCP}" }
    bindings:
      - { host: mcp.example.test, paths: ["/mcp", "/mcp-json"], mcp: { tools: [search_issues, "read_*"] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

/** The agent's MCP client, through keyswap, holding the placeholder. */
async function connect(path: '/mcp' | '/mcp-json'): Promise<Client> {
  const client = new Client({ name: 'agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`https://mcp.example.test${path}`), {
    fetch: (url, init) => undiciFetch(url as string, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>,
    requestInit: { headers: { authorization: `Bearer ${PH}` } },
  });
  await client.connect(transport);
  return client;
}

/** A raw POST to the MCP server through keyswap, as a compromised agent would write one. */
async function post(body: string | Buffer, headers: Record<string, string> = {}, path = '/mcp'): Promise<{ status: number; body: string; refusal: string | null }> {
  const res = await request(`https://mcp.example.test${path}`, {
    dispatcher: agent, method: 'POST', body,
    headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text, refusal: refusalOf(text) };
}

/** Which refusal a body is: a JSON-RPC error keyswap wrote, or one of the table's texts. */
function refusalOf(body: string): string | null {
  try {
    const first = ([JSON.parse(body)] as unknown[]).flat()[0] as { error?: { data?: { keyswap?: string } } };
    return first.error?.data?.keyswap ?? null;
  } catch {
    return Object.entries(OUTCOMES).find(([, [, text]]) => text === body)?.[0] ?? null;
  }
}

const call = (name: string, id: number | string = 1): Record<string, unknown> => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const sentUpstream = (text: string): boolean => remote.received.some((r) => r.body.includes(text));

describe('MCP tool policy (mcp: { tools })', () => {
  it('the agent\'s MCP client lists only the allowed tools (SSE and JSON answers), and an allowed call reaches the server with the real token', async () => {
    for (const path of ['/mcp', '/mcp-json'] as const) {
      const client = await connect(path);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['read_file', 'search_issues']);
      const result = await client.callTool({ name: 'search_issues', arguments: {} });
      expect(result.content).toEqual([{ type: 'text', text: 'ran search_issues' }]);
      await client.close();
    }
    expect(remote.ran.filter((t) => t === 'search_issues')).toHaveLength(2);
    expect(remote.received.filter((r) => r.body.includes('search_issues')).every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'mcp_tool_call' && r.tool === 'search_issues' && r.decision === 'allowed'))).toBe(true);
  });

  it('a call to any other tool is a JSON-RPC error naming it, nothing goes upstream, and the audit records the tool', async () => {
    const client = await connect('/mcp');
    const before = remote.received.length;
    await expect(client.callTool({ name: 'delete_repo', arguments: { repo: 'o/r' } })).rejects.toThrow(/tool 'delete_repo' is not allowed/);
    await client.close();
    expect(remote.ran).not.toContain('delete_repo');
    expect(remote.received.slice(before).some((r) => r.body.includes('delete_repo'))).toBe(false);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'mcp_tool_call' && r.tool === 'delete_repo' && r.decision === 'denied'))).toBe(true);
    // Recorded with the status the agent got: its JSON-RPC error came with 200.
    expect(h.auditRecords().some((r) => r.type === 'deny' && r.reason === 'mcp_tool_denied' && r.status === 200)).toBe(true);
  });

  it('a batch that smuggles a refused call among allowed ones is refused whole: an error for each request, nothing sent', async () => {
    const batch = [call('search_issues', 1), { jsonrpc: '2.0', method: 'notifications/progress', params: {} }, call('delete_repo', 'x')];
    const res = await post(JSON.stringify(batch));
    expect(res.status).toBe(200);
    expect(res.refusal).toBe('mcp_tool_denied');
    const answers = JSON.parse(res.body) as { id: unknown; error: { code: number; message: string } }[];
    expect(answers.map((a) => a.id)).toEqual([1, 'x']);
    expect(answers[1]?.error.message).toMatch(/delete_repo/);
    expect(answers[0]?.error.message).toMatch(/did not send/);
    expect(sentUpstream('delete_repo')).toBe(false);
    // A refused call with no id (a notification) has nothing to answer: 403.
    const lone = await post(JSON.stringify({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'delete_repo' } }));
    expect(lone.status).toBe(403);
    expect(sentUpstream('delete_repo')).toBe(false);
  });

  it('a body another parser could read differently is refused, never passed: repeated or escaped keys, BOM, not UTF-8, a charset, a coding, a disguised method, no name', async () => {
    const refusedBodies: [string, string | Buffer, Record<string, string>?][] = [
      ['repeated name', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","name":"delete_repo"}}'],
      ['repeated name, escaped', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","n\\u0061me":"delete_repo"}}'],
      ['repeated params', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"},"params":{"name":"delete_repo"}}'],
      ['BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(call('delete_repo')))])],
      ['not UTF-8', Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo\xff"}}', 'latin1')])],
      ['UTF-16', Buffer.from(JSON.stringify(call('delete_repo')), 'utf16le'), { 'content-type': 'application/json; charset=utf-16le' }],
      ['gzip', gzipSync(JSON.stringify(call('delete_repo'))), { 'content-encoding': 'gzip' }],
      ['comment', '{"jsonrpc":"2.0","id":1,/*x*/"method":"tools/call","params":{"name":"delete_repo"}}'],
      ['not JSON', 'method=tools/call&name=delete_repo', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['a string', '"tools/call delete_repo"'],
      ['non-string method', '{"jsonrpc":"2.0","id":1,"method":["tools/call"],"params":{"name":"delete_repo"}}'],
    ];
    for (const [what, body, headers] of refusedBodies) {
      const res = await post(body, headers);
      expect({ what, status: res.status, refusal: res.refusal }).toEqual({ what, status: 400, refusal: 'mcp_body_unreadable' });
    }
    for (const [what, body] of [
      ['method in capitals', JSON.stringify({ ...call('delete_repo'), method: 'Tools/Call' })],
      ['method with a space', JSON.stringify({ ...call('search_issues'), method: 'tools/call ' })],
      ['no name', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}'],
      ['name not a string', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["search_issues"]}}'],
      ['name with a NUL', JSON.stringify(call('search_issues\u0000'))],
    ] as const) {
      const res = await post(body);
      expect({ what, refusal: res.refusal }).toEqual({ what, refusal: 'mcp_tool_denied' });
    }
    expect(sentUpstream('delete_repo')).toBe(false);
    expect(remote.ran).not.toContain('delete_repo');
  });

  it('holds on every path and method of the server\'s host, not only the binding\'s paths, and over HTTP/2', async () => {
    for (const path of ['/MCP', '/mcp/', '/mcp;x', '//mcp', '/other']) {
      const res = await post(JSON.stringify(call('delete_repo')), {}, path);
      expect({ path, refusal: res.refusal }).toEqual({ path, refusal: 'mcp_tool_denied' });
    }
    const put = await request('https://mcp.example.test/mcp', { dispatcher: agent, method: 'PUT', body: JSON.stringify(call('delete_repo')), headers: { authorization: `Bearer ${PH}` } });
    expect(refusalOf(await put.body.text())).toBe('mcp_tool_denied');
    const h2 = await curlVia(h, 'https://mcp.example.test/mcp', { method: 'POST', data: JSON.stringify(call('delete_repo')), headers: [`Authorization: Bearer ${PH}`, 'Content-Type: application/json', 'Accept: application/json, text/event-stream'], extra: ['--http2'] });
    expect(refusalOf(h2.body)).toBe('mcp_tool_denied');
    expect(JSON.parse(h2.body)).toMatchObject({ id: 1, error: { code: -32001 } });
    expect(sentUpstream('delete_repo')).toBe(false);
  });

  it('a tool named with a placeholder, or a charset holding one, never puts the placeholder in the audit or the log', async () => {
    expect((await post(JSON.stringify(call(PH)))).refusal).toBe('mcp_tool_denied');
    expect((await post(JSON.stringify(call('search_issues')), { 'content-type': `application/json; charset=${PH}` })).refusal).toBe('mcp_body_unreadable');
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'mcp_tool_call' && r.tool === '(not a tool name)'))).toBe(true);
    expect(h.auditText()).not.toContain(PH);
    // The log's lines (the startup banner's `export` lines give agents their placeholders on purpose).
    expect((h.stderr() + h.stdout()).split('\n').filter((l) => l.startsWith('{"level"') && l.includes(PH))).toEqual([]);
  });

  it('never shows the real token: not to the agent, in no log, audit record or answer', () => {
    expect(findCanary(h, remote.received.filter((r) => r.authorization !== `Bearer ${TOKEN}`).map((r) => r.authorization ?? ''))).toEqual([]);
    expect(h.auditText()).not.toContain(TOKEN);
    expect(h.stderr() + h.stdout()).not.toContain(TOKEN);
  });
});
