import type http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Request, h2Via } from '../../helpers/h2-client.js';
import { waitFor, type Harness } from '../../helpers/harness.js';
import { rssBytes } from '../../helpers/process-memory.js';
import { startRecorder, type Recorded } from '../mcp-policy-attacks/servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack (goal 4): the first review's fix bounds request bodies held under a tool policy (64 MiB in all), but
 * not answers. Every JSON answer from the MCP server's host is read whole (up to 16 MiB) to filter a tools list it
 * may hold, with no backpressure (the filter consumes its input whatever the agent reads) and no budget across
 * answers; the filtered answer then waits in keyswap's memory for an agent that does not read it. An agent asks
 * for a large allowed result (read_file of a big file, or any big JSON on the host: the policy covers every path)
 * on many HTTP/2 streams and reads none of them: keyswap holds every answer whole. Without a tool policy the same
 * answers wait upstream in flow control.
 */
const PH = 'mcp-PLACEHOLDER-ansm-0123456789abcdef';
const TOKEN = `ansm-mcp-token-${'c4n4ry'.repeat(4)}`;
const BIG = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'a'.repeat(12 * 1024 * 1024) }] } });

let h: Harness;
let remote: Recorded;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, close } = await behindKeyswap('ansm.example.test', (tls) => startRecorder(tls, (path) => path === '/small'
    ? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"result":{}}' }
    : { status: 200, headers: { 'content-type': 'application/json' }, body: BIG }), {
    secretValues: { ANSM_MCP: TOKEN },
    secrets: `
  ANSM_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {ANSM_MCP}" }
    bindings:
      - { host: ansm.example.test, mcp: { tools: [read_file] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

const rss = (): number => rssBytes(h.child.pid as number);

describe('MCP tool policy: answers held in memory', () => {
  it('60 unread 12 MiB answers on two HTTP/2 connections do not make keyswap hold them all (~1.5 GiB measured; 64 MiB budget + transients after the fix)', async () => {
    const before = rss();
    let peak = before;
    const sessions: http2.ClientHttp2Session[] = [];
    const streams: http2.ClientHttp2Stream[] = [];
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { path: '/big' } } });
    for (let c = 0; c < 2; c++) {
      const session = await h2Via(h, 'ansm.example.test');
      sessions.push(session);
      for (let i = 0; i < 30; i++) {
        const s = session.request({ ':method': 'POST', ':path': '/mcp', authorization: `Bearer ${PH}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
        s.on('error', () => {});
        // The agent never reads: its flow-control window stays shut after the first 64 KiB.
        s.pause();
        s.end(call);
        streams.push(s);
      }
    }
    const sample = setInterval(() => { peak = Math.max(peak, rss()); }, 100);
    await waitFor(() => remote.received.length >= 60, 20_000, 100);
    await new Promise((r) => setTimeout(r, 5_000));
    clearInterval(sample);
    peak = Math.max(peak, rss());
    for (const s of streams) s.close();
    for (const session of sessions) session.close();
    expect(h.child.exitCode).toBeNull();
    const grown = peak - before;
    console.log(`rss grown: peak ${Math.round(grown / 2 ** 20)} MiB, now ${Math.round((rss() - before) / 2 ** 20)} MiB`);
    expect({ grownMiB: Math.round(grown / 2 ** 20), under512: grown < 512 * 2 ** 20 }).toMatchObject({ under512: true });
  }, 120_000);

  it('keyswap still serves afterwards', async () => {
    const session = await h2Via(h, 'ansm.example.test');
    const r = await h2Request(session, { ':method': 'POST', ':path': '/small', authorization: `Bearer ${PH}`, 'content-type': 'application/json' }, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
    session.close();
    expect(r.status).toBe(200);
  }, 30_000);
});
