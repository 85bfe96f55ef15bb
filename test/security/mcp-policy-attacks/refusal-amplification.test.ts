import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER, type Harness } from '../../helpers/harness.js';
import { startRecorder, type Recorded } from './servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack: one batch of many refused calls (each with an id) in a body well under the 4 MiB limit. keyswap's
 * JSON-RPC refusal (proxy/mcp-gate.ts jsonRpcRefusal) writes one error per request, and every error carries the
 * whole list of refused tools: N answers x N names, quadratic (20,000 calls of `x`, 1.4 MB, make ~20,000^2 names:
 * past V8's longest string), built with a linear search per answer, on the event loop. keyswap stops answering
 * every agent for ~10 s per such request, and each denied call is also its own audit record.
 */
const PH = 'mcp-PLACEHOLDER-amp-0123456789abcdef';
const TOKEN = `amp-mcp-token-${'c4n4ry'.repeat(4)}`;

let h: Harness;
let remote: Recorded;
let agent: ProxyAgent;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, agent, close } = await behindKeyswap('ampmcp.example.test', (tls) => startRecorder(tls), {
    secretValues: { AMP_MCP: TOKEN },
    secrets: `
  AMP_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {AMP_MCP}" }
    bindings:
      - { host: ampmcp.example.test, mcp: { tools: [search_issues] } }
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

describe('MCP tool policy: the refusal of a large batch', () => {
  it('20,000 refused calls in one 1.4 MB batch: a refusal, keyswap answering others meanwhile, a bounded audit', async () => {
    const batch = Array.from({ length: 20_000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'x' } }));
    const auditBefore = h.auditRecords().length;
    const started = Date.now();
    const big = request('https://ampmcp.example.test/mcp', {
      dispatcher: agent, method: 'POST', body: JSON.stringify(batch),
      headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    }).then(async (r) => ({ status: r.statusCode, bytes: (await r.body.arrayBuffer()).byteLength, ms: Date.now() - started }));
    // Another agent's request, sent while the batch is judged.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const other = await request('https://api.example.test/v1/echo', { dispatcher: new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } }), headers: { authorization: `Bearer ${PLACEHOLDER}` } });
    await other.body.text();
    const otherMs = Date.now() - t0;
    const answer = await big;
    const records = h.auditRecords().slice(auditBefore).filter((r) => r.type === 'mcp_tool_call').length;
    expect({ status: answer.status, otherAnsweredWithin2s: otherMs < 2_000, auditRecordsUnder1000: records < 1_000, answerUnder16MiB: answer.bytes < 16 * 2 ** 20 })
      .toEqual({ status: 200, otherAnsweredWithin2s: true, auditRecordsUnder1000: true, answerUnder16MiB: true });
    expect(remote.received.length).toBe(0);
  }, 120_000);
});
