import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { reloadWith } from './util.js';

/*
 * Attack (goal 2): the operator puts a binding under `approve:` (a reload) because an agent misbehaves. The agent
 * had already pipelined a request on that binding behind a big response it does not read, so that request was
 * decided under the old configuration and waits in mayForward. decisionStands() re-checks lockdown, the client and
 * the bindings against the configuration in force when it goes, but not approve:, so it goes upstream with the
 * secret and no operator ever saw it.
 */

const PH = 'sk-PLACEHOLDER-ATK28P-0123456789abcde';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { type: body }
    bindings:
      - { host: api.example.test, methods: [POST] }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: approve: added by a reload', () => {
  it('a request pipelined before the reload is held for approval when it goes, not sent as decided', async () => {
    h = await startHarness({ secrets: SECRETS });
    const t = await rawTlsVia(h, 'api.example.test', 443, {});
    t.on('error', () => {});
    t.pause();
    // First: a 64 MiB answer the agent does not read (backpressure keeps it unanswered). Second: the secret (in
    // the body: a header site is refused here for another reason, see decision-stands.test.ts).
    const body = `{"key":"${PH}"}`;
    t.write(`GET /v1/big?mb=64 HTTP/1.1\r\nHost: api.example.test\r\n\r\nPOST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(await waitFor(() => h.upstream.requests.some((r) => r.url.startsWith('/v1/big')), 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    await reloadWith(h, (y) => y.replace('methods: [POST] }', 'methods: [POST], approve: { timeout_seconds: 5 } }'));
    expect(readFileSync(`${h.dir}/keyswap.yaml`, 'utf8')).toContain('approve:');
    // Now the agent reads: the first answer ends, the second request goes.
    let bytes = 0;
    t.on('data', (c: Buffer) => { bytes += c.length; });
    t.resume();
    await new Promise<void>((r) => {
      const timer = setTimeout(() => { t.destroy(); r(); }, 15_000);
      t.once('close', () => { clearTimeout(timer); r(); });
    });
    const sent = h.upstream.requests.filter((r) => r.url === '/v1/upload' && r.body.toString().includes(h.canary));
    const approvals = h.auditRecords().filter((r) => r.type === 'approval');
    expect({ sentWithSecret: sent.length, approvalSteps: approvals.map((r) => r.step) }).toEqual({ sentWithSecret: 0, approvalSteps: ['requested', 'expired'] });
    expect(findCanary(h)).toEqual([]);
    expect(bytes).toBeGreaterThan(0);
  }, 60_000);
});
