import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawTlsVia } from '../../helpers/clients.js';
import { waitFor, type Harness } from '../../helpers/harness.js';
import { startRecorder, type Recorded } from './servers.js';
import { behindKeyswap } from '../../helpers/mcp-remote-server.js';

/*
 * Attacks on the wire that the tool policy held (these pass): raw HTTP/1.1 bytes an agent writes on its own
 * TLS connection through keyswap. Pipelining behind a refusal, a request hidden in a body, a call split across
 * chunks, Expect: 100-continue, a WebSocket upgrade, a charset hidden in a quoted parameter, `__proto__`.
 */
const PH = 'mcp-PLACEHOLDER-wire-0123456789abcdef';
const TOKEN = `wire-mcp-token-${'c4n4ry'.repeat(4)}`;
const HOST = 'wiremcp.example.test';

let h: Harness;
let remote: Recorded;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ h, server: remote, close } = await behindKeyswap(HOST, (tls) => startRecorder(tls), {
    secretValues: { WIRE_MCP: TOKEN },
    secrets: `
  WIRE_MCP:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {WIRE_MCP}" }
    bindings:
      - { host: ${HOST}, mcp: { tools: [search_issues] } }
`,
  }));
}, 60_000);

afterAll(async () => { await close?.(); });

const call = (name: string, id = 1): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name } });
const post = (body: string, extra = ''): string => `POST /mcp HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${PH}\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const nothingRefusedSent = (): boolean => !remote.received.some((r) => r.body.includes('delete_repo'));

describe('MCP tool policy on the raw wire (held)', () => {
  it('pipelined behind a refusal: the refusal closes the connection, nothing written after it goes', async () => {
    const before = remote.received.length;
    const s = await rawTlsVia(h, HOST);
    const got = await exchange(s, post(call('delete_repo', 1)) + post(call('search_issues', 2)) + post(call('delete_repo', 3)), 3_000);
    expect(got.match(/HTTP\/1\.1 /g)?.length).toBe(1);
    expect(got.toLowerCase()).toContain('connection: close');
    expect(remote.received.length).toBe(before);
  });

  it('pipelined behind an allowed call: the refused one after it is judged on its own and refused', async () => {
    const before = remote.received.length;
    const s = await rawTlsVia(h, HOST);
    const got = await exchange(s, post(call('search_issues', 1)) + post(call('delete_repo', 2)), 3_000);
    expect(got).toContain('mcp_tool_denied');
    expect(remote.received.slice(before).map((r) => JSON.parse(r.body.toString()).params.name)).toEqual(['search_issues']);
    expect(nothingRefusedSent()).toBe(true);
  });

  it('a second request written inside the first one\'s body is that body (unreadable), never a request of its own', async () => {
    const inner = post(call('delete_repo'));
    const s = await rawTlsVia(h, HOST);
    const got = await exchange(s, post(inner), 3_000);
    expect(got).toMatch(/^HTTP\/1\.1 400/);
    expect(nothingRefusedSent()).toBe(true);
  });

  it('chunked, the tool name split across chunks (with extensions and a trailer): judged whole, refused', async () => {
    const body = call('delete_repo');
    const cut = body.indexOf('delete') + 3;
    const chunk = (t: string, ext = ''): string => `${Buffer.byteLength(t).toString(16)}${ext}\r\n${t}\r\n`;
    const req = `POST /mcp HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${PH}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(body.slice(0, cut), ';a=b')}${chunk(body.slice(cut))}0\r\nX-Trailer: 1\r\n\r\n`;
    const s = await rawTlsVia(h, HOST);
    const got = await exchange(s, req, 3_000);
    expect(got).toContain('mcp_tool_denied');
    expect(nothingRefusedSent()).toBe(true);
  });

  it('Expect: 100-continue: an allowed call is answered (not held until the upload timeout), a refused one refused', async () => {
    const before = remote.received.length;
    const head = `POST /mcp HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${PH}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${call('search_issues').length}\r\n\r\n`;
    const s = await rawTlsVia(h, HOST);
    let got = '';
    s.on('data', (c: Buffer) => { got += c.toString('latin1'); });
    s.write(head);
    // A client waits (about 1 s) for 100 Continue, then sends anyway.
    await waitFor(() => got.includes('100 Continue'), 1_000);
    s.write(call('search_issues'));
    expect(await waitFor(() => /HTTP\/1\.1 200/.test(got), 5_000)).toBe(true);
    s.destroy();
    expect(remote.received.length).toBe(before + 1);
    const s2 = await rawTlsVia(h, HOST);
    expect(await exchange(s2, post(call('delete_repo'), 'Expect: 100-continue\r\n'), 3_000)).toContain('mcp_tool_denied');
    expect(nothingRefusedSent()).toBe(true);
  });

  it('a WebSocket upgrade to the MCP host is refused (no JSON-RPC is read from frames)', async () => {
    const before = remote.received.length;
    const s = await rawTlsVia(h, HOST);
    const got = await exchange(s, `GET /mcp HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${PH}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, 3_000);
    expect(got).not.toMatch(/^HTTP\/1\.1 101/);
    expect(remote.received.length).toBe(before);
  });

  it('a single non-UTF-8 charset, however spelled (quoted, spaced, upper case), or Content-Type twice, is refused', async () => {
    for (const ct of ['application/json; charset="utf-7"', 'application/json; CHARSET = utf-7', 'application/json;charset=latin1']) {
      const s = await rawTlsVia(h, HOST);
      const got = await exchange(s, `POST /mcp HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer ${PH}\r\nContent-Type: ${ct}\r\nContent-Length: ${call('search_issues').length}\r\n\r\n${call('search_issues')}`, 3_000);
      expect({ ct, status: got.slice(0, 12) }).toEqual({ ct, status: 'HTTP/1.1 400' });
    }
    const s = await rawTlsVia(h, HOST);
    const got = await exchange(s, post(call('search_issues'), 'Content-Type: application/json; charset=utf-7\r\n'), 3_000);
    expect(got).toMatch(/^HTTP\/1\.1 400/);
  });

  it('`__proto__` carrying a name, and a name only inherited, are no name: refused', async () => {
    for (const body of [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"name":"delete_repo"}}}',
      '{"jsonrpc":"2.0","id":1,"__proto__":{"method":"tools/call","params":{"name":"delete_repo"}},"method":"tools/call","params":{"name":"delete_repo"}}',
    ]) {
      const s = await rawTlsVia(h, HOST);
      expect(await exchange(s, post(body), 3_000)).toContain('mcp_tool_denied');
    }
    expect(nothingRefusedSent()).toBe(true);
  });
});
