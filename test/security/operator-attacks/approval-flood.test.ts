import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../../helpers/clients.js';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { control } from './util.js';

/*
 * Attack (goal 5): one agent fills the approval queue (HTTP/2: 100 streams per connection, 20 connections). Nothing
 * bounds how many requests one client may have held: measured ~25 KiB of RSS per held request, and /v1/status (which
 * every console viewer re-fetches on each 'changed', i.e. on every new held request) grows by ~280 bytes each: O(n²)
 * traffic to each viewer, and an operator's legitimate approval buried. Expected: a per-client cap (256 chosen here)
 * past which a request is refused at once.
 */
const PH = 'sk-PLACEHOLDER-ATK28F-0123456789abcde';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], approve: { timeout_seconds: 120 } }
`;
let h: Harness;
afterEach(async () => { await h?.close(); });
const rss = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

describe('operator attacks: approval flood', () => {
  it('one client cannot hold 2000 requests waiting for approval (at most 256)', async () => {
    h = await startHarness({ secrets: SECRETS });
    const pid = h.child.pid as number;
    const before = rss(pid);
    const sessions: http2.ClientHttp2Session[] = [];
    for (let c = 0; c < 20; c++) {
      const socket = await rawTlsVia(h, 'api.example.test', 443, { ALPNProtocols: ['h2'] });
      const s = http2.connect('https://api.example.test', { createConnection: () => socket });
      s.on('error', () => {});
      sessions.push(s);
      for (let i = 0; i < 100; i++) {
        const st = s.request({ ':method': 'POST', ':path': `/v1/x/${c}/${i}/${'a'.repeat(200)}`, authorization: `Bearer ${PH}`, 'content-length': '0' }, { endStream: true });
        st.on('error', () => {});
        st.resume();
      }
    }
    const ok = await waitFor(() => h.auditRecords().filter((r) => ['approval', 'deny'].includes(r.type as string)).length >= 2000, 60_000, 200);
    const status = await control(h, 'GET', '/v1/status');
    const size = JSON.stringify(status.body).length;
    const after = rss(pid);
    console.log(`FLOOD held=${(status.body.approvals as unknown[]).length} ok=${ok} rss ${before.toFixed(0)} -> ${after.toFixed(0)} MiB, status ${size} bytes`);
    for (const s of sessions) s.destroy();
    expect(ok).toBe(true);
    expect((status.body.approvals as unknown[]).length).toBeLessThanOrEqual(256);
  }, 120_000);
});
