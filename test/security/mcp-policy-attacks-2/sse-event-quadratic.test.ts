import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness } from '../../helpers/harness.js';
import { startRecorder, type Recorded } from '../mcp-policy-attacks/servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack (goal 4): under a tool policy every SSE answer from the MCP server goes through sseEvents(), which
 * appends each arriving chunk to the event being assembled with Buffer.concat([pending, chunk]): the whole event
 * so far is copied for every TLS record. One event of 15 MiB (an allowed tool's large result, e.g. read_file of a
 * big file, as a streamable-HTTP server answers it) arrives in ~1,000 records and costs ~8 GiB of copying: seconds
 * of CPU on keyswap's one thread, every agent stalled meanwhile. The same bytes as a JSON answer cost a fraction.
 */
const PH = 'mcp-PLACEHOLDER-sseq-0123456789abcdef';
const TOKEN = `sseq-mcp-token-${'c4n4ry'.repeat(4)}`;
const TEXT = 'a'.repeat(15 * 1024 * 1024 - 4096);
const RESULT = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: TEXT }] } });

let h: Harness;
let remote: Recorded;
let agent: ProxyAgent;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, agent, close } = await behindKeyswap('sseq.example.test', (tls) => startRecorder(tls, (path) => path === '/sse'
    ? { status: 200, headers: { 'content-type': 'text/event-stream' }, body: `event: message\ndata: ${RESULT}\n\n` }
    : { status: 200, headers: { 'content-type': 'application/json' }, body: RESULT }), {
    secretValues: { SSEQ_MCP: TOKEN },
    secrets: `
  SSEQ_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {SSEQ_MCP}" }
    bindings:
      - { host: sseq.example.test, mcp: { tools: [read_file] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

/** keyswap's CPU time so far (user + system), in seconds. */
function cpuSeconds(): number {
  const fields = readFileSync(`/proc/${h.child.pid as number}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function callCost(path: string): Promise<{ cpu: number; bytes: number }> {
  const before = cpuSeconds();
  const res = await request(`https://sseq.example.test${path}`, {
    dispatcher: agent, method: 'POST',
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { path: '/big' } } }),
    headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  });
  const bytes = (await res.body.arrayBuffer()).byteLength;
  return { cpu: cpuSeconds() - before, bytes };
}

describe('MCP tool policy: the SSE filter on a large event', () => {
  it('costs about what the same answer as JSON costs, not seconds of copying', async () => {
    await callCost('/json'); // warm up (connection, TLS, JIT)
    const json = await callCost('/json');
    const sse = await callCost('/sse');
    expect(json.bytes).toBe(Buffer.byteLength(RESULT));
    expect(sse.bytes).toBeGreaterThan(Buffer.byteLength(RESULT));
    console.log(`keyswap CPU: JSON ${json.cpu.toFixed(2)} s, SSE ${sse.cpu.toFixed(2)} s`);
    expect({ jsonCpu: json.cpu.toFixed(2), sseCpu: sse.cpu.toFixed(2), linear: sse.cpu < 2 * json.cpu + 0.5 }).toMatchObject({ linear: true });
  }, 60_000);
});
