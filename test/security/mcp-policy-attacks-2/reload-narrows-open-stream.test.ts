import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type Harness } from '../../helpers/harness.js';
import { reloadWith } from '../operator-attacks/util.js';
import { startLegacySse, type Recorded } from '../mcp-policy-attacks/servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack (goal 2): the tools-list filter of an answer is made from the snapshot its request entered under. An SSE
 * stream outlives reloads: the legacy HTTP+SSE transport carries every answer of a session on its one GET /sse
 * stream (a streamable-HTTP server's standalone GET stream too). The operator narrows `mcp.tools` (a reload);
 * an agent whose stream was open before keeps being shown the tools the policy now refuses, on every tools/list.
 */
const PH = 'mcp-PLACEHOLDER-rlns-0123456789abcdef';
const TOKEN = `rlns-mcp-token-${'c4n4ry'.repeat(4)}`;

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
      - { host: mcp.example.test, mcp: { tools: [search_issues, read_file] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

describe('MCP tool policy narrowed by a reload while an SSE stream is open', () => {
  it('a tools/list answered on the stream after the reload lists only what the policy now allows', async () => {
    const res = await request('https://mcp.example.test/sse', { dispatcher: agent, method: 'GET', headers: { authorization: `Bearer ${PH}`, accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    let text = '';
    res.body.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    res.body.on('error', () => {});
    expect(await waitFor(() => /event: endpoint\r?\ndata: \S+/.test(text))).toBe(true);
    const endpoint = /event: endpoint\r?\ndata: (\S+)/.exec(text)?.[1] as string;
    const list = async (id: number): Promise<string[]> => {
      const r = await request(`https://mcp.example.test${endpoint}`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }), headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json' } });
      await r.body.text();
      const found = (): RegExpExecArray | null => new RegExp(`data: (\\{[^\\n]*"id":${id}[,}][^\\n]*)`).exec(text);
      expect(await waitFor(() => found() !== null)).toBe(true);
      const m = JSON.parse(found()?.[1] as string) as { result: { tools: { name: string }[] } };
      return m.result.tools.map((t) => t.name).sort();
    };
    expect(await list(1)).toEqual(['read_file', 'search_issues']);
    await reloadWith(h, (y) => y.replace('tools: [search_issues, read_file]', 'tools: [search_issues]'));
    const after = await list(2);
    res.body.destroy();
    expect(after).toEqual(['search_issues']);
  }, 30_000);
});
