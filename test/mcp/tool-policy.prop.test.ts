import fc from 'fast-check';
import { parseTree, type Node } from 'jsonc-parser';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { respondHeader } from '../helpers/upstream.js';
import { startHarness, type Harness } from '../helpers/harness.js';

/*
 * Issue #30, item 4, as properties an attacker's inputs must not break:
 * P1: whatever body a compromised agent writes to an MCP server with a tool policy, no body that reaches the server
 *     calls a tool outside the policy, as any JSON reader would read it (the last of a repeated key, or the first;
 *     the method in any case or with spaces).
 * P2: whatever a server answers (SSE with any line endings, split anywhere; JSON), no tools list the agent reads
 *     lists a tool outside the policy.
 * MCP_PROP_RUNS (default 400) and PROP_SEED (42) fix the run in CI.
 */
const RUNS = Number(process.env.MCP_PROP_RUNS ?? 400);
const SEED = Number(process.env.PROP_SEED ?? 42);
const PH = 'mcp-PLACEHOLDER-prop-0123456789abcdef';
const ALLOWED = (name: string): boolean => name === 'search_issues' || /^read_.*$/s.test(name);

let h: Harness;
let agent: ProxyAgent;

beforeAll(async () => {
  h = await startHarness({
    secretValues: { PROP_MCP: 'prop-mcp-real-token-0123456789' },
    secrets: `
  PROP_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {PROP_MCP}" }
    bindings:
      - { host: api.example.test, paths: ["/v1/**"], mcp: { tools: [search_issues, "read_*"] } }
`,
  });
  agent = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem }, connections: 4 });
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await h?.close();
});

// ---- P1: request bodies ------------------------------------------------------------------------------------

const toolNames = fc.constantFrom('search_issues', 'read_file', 'read_', 'delete_repo', 'Search_issues', 'search_issues ', ' search_issues', 'read', 'search_issues\u0000', 'search_issuesx', 'readfile', 'delete_repo/read_x', '');
const methods = fc.constantFrom('tools/call', 'Tools/call', 'tools/call ', 'TOOLS/CALL', 'tools/list', 'initialize', 'notifications/initialized', '\ttools/call');
/** A key as written: plain, or with an escape that decodes to the same name. */
const spelled = (key: string): fc.Arbitrary<string> => fc.constantFrom(JSON.stringify(key), `"${key.slice(0, 1)}\\u00${key.charCodeAt(1).toString(16)}${key.slice(2)}"`);

/** One message as text: its keys possibly repeated (a second, different value first or last), spelled with escapes. */
const tricky = fc.record({
  method: methods, name: toolNames, other: toolNames, repeat: fc.constantFrom('none', 'name', 'method', 'params'), repeatFirst: fc.boolean(),
  id: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }), nameKey: spelled('name'), methodKey: spelled('method'), paramsKey: spelled('params'),
}).map((m) => {
  const nameField = (n: string): string => `${m.nameKey}:${JSON.stringify(n)}`;
  const names = m.repeat === 'name' ? (m.repeatFirst ? [nameField(m.other), nameField(m.name)] : [nameField(m.name), nameField(m.other)]) : [nameField(m.name)];
  const params = (n: string[]): string => `${m.paramsKey}:{${n.join(',')},"arguments":{}}`;
  const paramsFields = m.repeat === 'params' ? [params(names), params([nameField(m.other)])] : [params(names)];
  const methodFields = m.repeat === 'method' ? [`${m.methodKey}:${JSON.stringify(m.method)}`, `"method":"tools/call"`] : [`${m.methodKey}:${JSON.stringify(m.method)}`];
  return `{"jsonrpc":"2.0",${m.id === undefined ? '' : `"id":${m.id},`}${[...methodFields, ...paramsFields].join(',')}}`;
});
/** A message a well-behaved client writes, to an allowed tool or not: the bodies the policy must let through too. */
const plain = fc.record({ method: fc.constantFrom('tools/call', 'tools/list', 'initialize'), name: fc.constantFrom('search_issues', 'read_file', 'read_me', 'delete_repo'), id: fc.integer({ min: 0, max: 9 }) })
  .map((m) => JSON.stringify({ jsonrpc: '2.0', id: m.id, method: m.method, params: { name: m.name, arguments: {} } }));
const message = fc.oneof({ arbitrary: plain, weight: 2 }, { arbitrary: tricky, weight: 3 });

const body = fc.record({ messages: fc.array(message, { minLength: 1, maxLength: 4 }), batch: fc.boolean(), bom: fc.integer({ min: 0, max: 9 }).map((n) => n === 0), pad: fc.constantFrom('', ' ', '\n', '\t\r\n') })
  .map((b) => `${b.bom ? '\ufeff' : ''}${b.pad}${b.batch || b.messages.length > 1 ? `[${b.messages.join(',')}]` : b.messages[0]}${b.pad}`);

/** A JSON reader that keeps the first of a repeated key (some parsers do). */
function firstWins(text: string): unknown {
  const tree = parseTree(text.replace(/^\ufeff/, ''));
  const build = (n: Node | undefined): unknown => {
    if (n === undefined) return undefined;
    if (n.type === 'object') {
      const out: Record<string, unknown> = {};
      for (const p of n.children ?? []) {
        const key = p.children?.[0]?.value as string;
        if (!Object.hasOwn(out, key)) out[key] = build(p.children?.[1]);
      }
      return out;
    }
    if (n.type === 'array') return (n.children ?? []).map(build);
    return n.value;
  };
  return build(tree);
}

/** The tools a body calls, as a reader sees them (null: a call naming no string tool). */
function calledTools(value: unknown): (string | null)[] {
  const list = Array.isArray(value) ? value : [value];
  return list.flatMap((m) => {
    if (typeof m !== 'object' || m === null) return [];
    const method = (m as Record<string, unknown>).method;
    if (typeof method !== 'string' || method.trim().toLowerCase() !== 'tools/call') return [];
    const name = ((m as Record<string, unknown>).params as Record<string, unknown> | undefined)?.name;
    return [typeof name === 'string' ? name : null];
  });
}

// ---- P2: answers -------------------------------------------------------------------------------------------

const listedTools = fc.subarray(['search_issues', 'read_file', 'delete_repo', 'drop_db', 'read'], { minLength: 1 });
const answer = fc.record({
  tools: listedTools, sse: fc.boolean(), eol: fc.constantFrom('\n', '\r\n', '\r'), cuts: fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 6 }),
  preface: fc.boolean(), multiline: fc.boolean(), batch: fc.boolean(),
}).map((a) => {
  const msg = { jsonrpc: '2.0', id: 1, result: { tools: a.tools.map((name) => ({ name, inputSchema: { type: 'object' } })) } };
  const json = JSON.stringify(a.batch ? [msg] : msg);
  let text = json;
  if (a.sse) {
    // Data split over several data: lines is joined with LF by every reader: the JSON still parses.
    const data = a.multiline ? json.replace(/,/g, `,${a.eol}data: `) : json;
    text = `${a.preface ? `: keep-alive${a.eol}${a.eol}event: message${a.eol}id: 7${a.eol}` : ''}data: ${data}${a.eol}${a.eol}`;
  }
  const bytes = Buffer.from(text);
  const chunks: string[] = [];
  let at = 0;
  for (const c of a.cuts) {
    if (at + c >= bytes.length) break;
    chunks.push(bytes.subarray(at, at + c).toString('base64'));
    at += c;
  }
  chunks.push(bytes.subarray(at).toString('base64'));
  return { spec: { status: 200, headers: { 'content-type': a.sse ? 'text/event-stream' : 'application/json' }, chunks }, sse: a.sse };
});

/** An SSE reader as the WHATWG standard specifies it: the data of each dispatched event. */
function sseData(text: string): string[] {
  const out: string[] = [];
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data.length > 0) out.push(data.join('\n'));
      data = [];
    } else if (line === 'data' || line.startsWith('data:')) data.push(line.startsWith('data: ') ? line.slice(6) : line.slice(5));
  }
  return out;
}

function listed(value: unknown): string[] {
  return (Array.isArray(value) ? value : [value]).flatMap((m) => ((m as { result?: { tools?: { name: string }[] } }).result?.tools ?? []).map((t) => t.name));
}

describe('MCP tool policy, properties', () => {
  it(`P1: no body that reaches the server calls a tool outside the policy, under any reading (${RUNS} runs, seed ${SEED})`, async () => {
    let passed = 0;
    let refused = 0;
    await fc.assert(fc.asyncProperty(body, async (text) => {
      const before = h.upstream.requests.length;
      const res = await request('https://api.example.test/v1/echo', { dispatcher: agent, method: 'POST', body: text, headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json' } });
      await res.body.text();
      const got = h.upstream.requests.slice(before).map((r) => r.body.toString('utf8'));
      if (got.length === 0) refused++;
      for (const received of got) {
        passed++;
        for (const reading of [() => JSON.parse(received) as unknown, () => firstWins(received)]) {
          let value: unknown;
          try {
            value = reading();
          } catch {
            continue;
          }
          for (const tool of calledTools(value)) expect(tool !== null && ALLOWED(tool), `${received} calls ${String(tool)}`).toBe(true);
        }
      }
    }), { numRuns: RUNS, seed: SEED, endOnFailure: true });
    // The generator reaches both sides: allowed bodies pass, and many are refused.
    expect(passed).toBeGreaterThan(RUNS / 20);
    expect(refused).toBeGreaterThan(RUNS / 4);
  }, 300_000);

  it(`P2: no tools list the agent reads names a tool outside the policy (${Math.ceil(RUNS / 2)} runs, seed ${SEED})`, async () => {
    await fc.assert(fc.asyncProperty(answer, async ({ spec, sse }) => {
      const res = await request('https://api.example.test/v1/respond', { dispatcher: agent, method: 'POST', body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}', headers: { authorization: `Bearer ${PH}`, 'content-type': 'application/json', 'x-respond': respondHeader(spec) } });
      const text = await res.body.text();
      expect(res.statusCode).toBe(200);
      const messages = sse ? sseData(text).map((d) => JSON.parse(d) as unknown) : [JSON.parse(text) as unknown];
      const names = messages.flatMap(listed);
      expect(names.filter((n) => !ALLOWED(n)), text).toEqual([]);
      // What the policy allows is still listed.
      const offered = (JSON.parse(Buffer.concat(spec.chunks.map((c) => Buffer.from(c, 'base64'))).toString().replace(/^[\s\S]*?data: /, '').replace(/(\r\n|\r|\n)data: /g, '').trim()) as unknown);
      expect(names.sort()).toEqual(listed(offered).filter(ALLOWED).sort());
    }), { numRuns: Math.ceil(RUNS / 2), seed: SEED, endOnFailure: true });
  }, 300_000);
});
