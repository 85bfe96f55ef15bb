import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type Harness } from '../../helpers/harness.js';
import { startLegacySse, type Recorded } from './servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack: a Content-Type with the charset parameter twice. keyswap's reading (wire/jsonrpc.ts) takes the FIRST
 * charset (utf-8) and judges the bytes as UTF-8 JSON; the official TypeScript SDK's legacy HTTP+SSE transport
 * (SSEServerTransport.handlePostMessage: content-type.parse, last parameter wins, then raw-body/iconv-lite with
 * that charset) decodes the same bytes as UTF-7, where `+ACI-` is a quote: the string keyswap saw becomes a
 * second `name` key, and JSON.parse keeps the last. The refused tool runs with the real token.
 */
const PH = 'mcp-PLACEHOLDER-legacy-0123456789abcdef';
const TOKEN = `legacy-mcp-token-${'c4n4ry'.repeat(4)}`;

let h: Harness;
let remote: Recorded;
let agent: ProxyAgent;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, agent, close } = await behindKeyswap('mcp.example.test', (tls) => startLegacySse(tls, TOKEN), {
    secretValues: { LEGACY_MCP: TOKEN },
    secrets: `
  LEGACY_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {LEGACY_MCP}" }
    bindings:
      - { host: mcp.example.test, mcp: { tools: [search_issues] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

/** Opens the legacy SSE stream through keyswap and returns the endpoint it names (and the stream, to close). */
async function openSession(): Promise<{ endpoint: string; close: () => void }> {
  const res = await request('https://mcp.example.test/sse', { dispatcher: agent, method: 'GET', headers: { authorization: `Bearer ${PH}`, accept: 'text/event-stream' } });
  expect(res.statusCode).toBe(200);
  // A listener, not for-await: leaving the loop would destroy the stream (and the session with it).
  return new Promise((resolve, reject) => {
    let text = '';
    res.body.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const m = /event: endpoint\r?\ndata: (\S+)/.exec(text);
      if (m?.[1]) resolve({ endpoint: m[1], close: () => res.body.destroy() });
    });
    res.body.once('end', () => reject(new Error('no endpoint event')));
    res.body.once('error', reject);
  });
}

async function post(endpoint: string, body: string, contentType: string): Promise<{ status: number; body: string }> {
  const res = await request(`https://mcp.example.test${endpoint}`, { dispatcher: agent, method: 'POST', body, headers: { authorization: `Bearer ${PH}`, 'content-type': contentType } });
  return { status: res.statusCode, body: await res.body.text() };
}

describe('MCP tool policy vs. a Content-Type naming its charset twice (legacy HTTP+SSE transport of the official SDK)', () => {
  it('control: a plain call to the refused tool is refused', async () => {
    const s = await openSession();
    const res = await post(s.endpoint, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_repo', arguments: {} } }), 'application/json');
    s.close();
    expect(res.body).toContain('mcp_tool_denied');
    expect(remote.ran.map((r) => r.tool)).not.toContain('delete_repo');
  });

  it('control: a single charset=utf-7 is refused as unreadable', async () => {
    const s = await openSession();
    const res = await post(s.endpoint, '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search_issues"}}', 'application/json; charset=utf-7');
    s.close();
    expect(res.status).toBe(400);
    expect(remote.ran.map((r) => r.tool)).not.toContain('delete_repo');
  });

  it('`charset=utf-8; charset=utf-7`: keyswap reads an allowed call, the SDK must not run delete_repo', async () => {
    const before = remote.ran.length;
    const s = await openSession();
    // UTF-8 (keyswap): params = { name: "search_issues", x: "+ACI-,+ACI-name+ACI-:+ACI-delete+AF8-repo" }
    // UTF-7 (SDK):     params = { name: "search_issues", x: "", name: "delete_repo" } -> name: "delete_repo"
    const body = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_issues","x":"+ACI-,+ACI-name+ACI-:+ACI-delete+AF8-repo"}}';
    const res = await post(s.endpoint, body, 'application/json; charset=utf-8; charset=utf-7');
    // Give the server the time to run what it was sent (its answer goes on the SSE stream).
    await waitFor(() => remote.ran.length > before, 2_000);
    s.close();
    expect({ status: res.status, ran: remote.ran.slice(before).map((r) => ({ tool: r.tool, realToken: r.authorization === `Bearer ${TOKEN}` })) }).toEqual({ status: 400, ran: [] });
  });

  it('the first charset hidden in a quoted parameter (`x="; charset=utf-8"; charset=utf-7`): delete_repo must not run', async () => {
    const before = remote.ran.length;
    const s = await openSession();
    const body = '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search_issues","x":"+ACI-,+ACI-name+ACI-:+ACI-delete+AF8-repo"}}';
    const res = await post(s.endpoint, body, 'application/json; x="; charset=utf-8"; charset=utf-7');
    await waitFor(() => remote.ran.length > before, 2_000);
    s.close();
    expect({ status: res.status, ran: remote.ran.slice(before).map((r) => ({ tool: r.tool, realToken: r.authorization === `Bearer ${TOKEN}` })) }).toEqual({ status: 400, ran: [] });
  });
});
