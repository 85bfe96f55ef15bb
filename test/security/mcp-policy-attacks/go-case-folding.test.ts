import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness } from '../../helpers/harness.js';
import { startRecorder, type Recorded } from './servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attack: object keys that keyswap (exact, case-sensitive keys) reads as other fields, while a Go MCP server reads
 * them as `method`, `params` or `name`. Go's encoding/json matches keys to struct tags case-insensitively, also
 * folding ſ (U+017F) to s and K (U+212A) to k, the last match winning (objects merged): mark3labs/mcp-go and the
 * official go-sdk before v1.3.1 (GHSA-wvj2-96wp-fq3f, CVE-2026-27896). The go-sdk's replacement parser (segmentio,
 * go-sdk 1.3.1–1.4.0) took `"name\u0000"` for `name` (GHSA-q382-vc8q-7jhj). Checked against go1.19's encoding/json:
 * each body below unmarshals to method "tools/call", params.name "delete_repo".
 *
 * The upstream here records the bytes it got; `goReads` is encoding/json's reading of them (a model of it, the
 * NUL strip being segmentio's). A body keyswap forwards must not read as a call to the refused tool.
 */
const PH = 'mcp-PLACEHOLDER-go-0123456789abcdef';
const TOKEN = `go-mcp-token-${'c4n4ry'.repeat(4)}`;

let h: Harness;
let remote: Recorded;
let agent: ProxyAgent;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, agent, close } = await behindKeyswap('gomcp.example.test', (tls) => startRecorder(tls), {
    secretValues: { GO_MCP: TOKEN },
    secrets: `
  GO_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {GO_MCP}" }
    bindings:
      - { host: gomcp.example.test, mcp: { tools: [search_issues] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

/** Go's key matching: ASCII case, ſ→s, K→k (and segmentio's trailing-NUL blindness). */
const goFold = (k: string): string => k.replace(/\u0000+$/, '').replace(/ſ/g, 's').replace(/K/g, 'k').toLowerCase();

/** {method, name} as a Go server unmarshals the message into {Method string; Params struct{Name string}}. */
function goReads(body: Buffer): { method: unknown; name: unknown } | null {
  let m: unknown;
  try {
    m = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null;
  let method: unknown;
  let name: unknown;
  for (const [k, v] of Object.entries(m)) {
    if (goFold(k) === 'method') method = v;
    if (goFold(k) === 'params' && typeof v === 'object' && v !== null) {
      for (const [pk, pv] of Object.entries(v)) if (goFold(pk) === 'name') name = pv;
    }
  }
  return { method, name };
}

const BODIES: [string, string][] = [
  ['"Method" alone', '{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete_repo"}}'],
  ['"METHOD" after an innocent "method"', '{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"tools/call","params":{"name":"delete_repo"}}'],
  ['"Name" after an allowed "name"', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","Name":"delete_repo"}}'],
  ['"paramſ" (U+017F) merged over "params"', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues"},"paramſ":{"name":"delete_repo"}}'],
  ['"name\\u0000" (segmentio)', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","name\\u0000":"delete_repo"}}'],
];

describe('MCP tool policy vs. a Go MCP server\'s case-insensitive keys', () => {
  it('the model reads a plain refused call as one (control)', () => {
    expect(goReads(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}'))).toEqual({ method: 'tools/call', name: 'delete_repo' });
    for (const [, body] of BODIES) expect(goReads(Buffer.from(body))).toEqual({ method: 'tools/call', name: 'delete_repo' });
  });

  it.each(BODIES)('%s: never reaches the server as a call to delete_repo', async (_what, body) => {
    const before = remote.received.length;
    const res = await request('https://gomcp.example.test/mcp', {
      dispatcher: agent, method: 'POST', body,
      headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    });
    await res.body.text();
    const smuggled = remote.received.slice(before).filter((r) => {
      const read = goReads(r.body);
      return read?.method === 'tools/call' && read.name === 'delete_repo';
    });
    expect(smuggled.map((r) => ({ authorization: r.authorization === `Bearer ${TOKEN}` ? 'real token' : r.authorization, body: r.body.toString() }))).toEqual([]);
  });
});
