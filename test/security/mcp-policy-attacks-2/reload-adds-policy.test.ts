import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { reloadWith } from '../operator-attacks/util.js';

/*
 * Attack (goal 1): guardStillHolds() re-judges a held body after a reload only when the request was read under a
 * tool policy at entry (guarded !== null). A destination that had no `mcp:` when the request arrived, and has one
 * when it goes, is never judged: the operator adds `mcp: { tools: [search_issues] }` (a reload) because an agent
 * misbehaves, but the agent had already parked calls to delete_repo on the connection, pipelined behind a big
 * answer it does not read (mayForward waits for it, as long as the agent likes). They go upstream with the real
 * token once the agent reads on. The same holds for a wait behind `approve:`.
 */

const PH = 'sk-PLACEHOLDER-MCP2RL-0123456789abcde';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('MCP tool policy added by a reload while a call waits', () => {
  it('a tools/call parked before the reload is judged by the policy in force when it goes', async () => {
    h = await startHarness({ secrets: SECRETS });
    const t = await rawTlsVia(h, 'api.example.test', 443, {});
    t.on('error', () => {});
    t.pause();
    const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'delete_repo', arguments: { repo: 'o/r' } } });
    t.write(`GET /v1/big?mb=64 HTTP/1.1\r\nHost: api.example.test\r\n\r\n`
      + `POST /mcp HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(call)}\r\nConnection: close\r\n\r\n${call}`);
    expect(await waitFor(() => h.upstream.requests.some((r) => r.url.startsWith('/v1/big')), 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    await reloadWith(h, (y) => y.replace('- { host: api.example.test }', '- { host: api.example.test, mcp: { tools: [search_issues] } }'));
    expect(readFileSync(`${h.dir}/keyswap.yaml`, 'utf8')).toContain('mcp: { tools: [search_issues] }');
    let bytes = 0;
    t.on('data', (c: Buffer) => { bytes += c.length; });
    t.resume();
    await new Promise<void>((r) => {
      const timer = setTimeout(() => { t.destroy(); r(); }, 20_000);
      t.once('close', () => { clearTimeout(timer); r(); });
    });
    expect(bytes).toBeGreaterThan(0);
    const ran = h.upstream.requests.filter((r) => r.url === '/mcp').map((r) => ({ realToken: r.headers.authorization === `Bearer ${h.canary}`, body: r.body.toString() }));
    expect(ran).toEqual([]);
    expect(findCanary(h)).toEqual([]);
  }, 60_000);
});
