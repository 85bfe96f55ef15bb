import { afterEach, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { control, openSession, sha } from './util.js';

/*
 * Denial (goal 5): every session start or end (`keyswap run` anywhere on the machine) and every revocation now
 * replaces the snapshot. A request that waited across such a change is re-decided by decisionStands() on
 * `facts.headers`, the very array applyPlacements() has already written the secret into: the placeholder is gone,
 * so the re-decision finds no injection and refuses `unbound_destination`. An operator's approval of a held request
 * is thrown away whenever any other agent's command started or ended while it was held.
 */

const PH = 'sk-PLACEHOLDER-ATK28D-0123456789abcde';
const TOKEN = 'ks_attack28-stands-agent-0123456789';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/merge"], approve: { timeout_seconds: 30 } }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: an approved request after a session started elsewhere', () => {
  it('is sent (200, the secret upstream), not refused as unbound_destination', async () => {
    h = await startHarness({ secrets: SECRETS, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n  agent-b: { token_sha256: "${sha('ks_attack28-other-0123456789')}", secrets: [TEST_API_KEY] }\n` });
    const t = await rawTlsVia(h, 'api.example.test', 443, {}, `agent-a:${TOKEN}`);
    let got = '';
    t.on('data', (c: Buffer) => { got += c.toString('latin1'); });
    t.on('error', () => {});
    t.write(`POST /v1/merge HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    const closed = new Promise<void>((r) => {
      const timer = setTimeout(() => { t.destroy(); r(); }, 15_000);
      t.once('close', () => { clearTimeout(timer); r(); });
    });
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    // Meanwhile, another agent's `keyswap run` starts and ends.
    const s = await openSession(h, { parent: 'agent-b', command: 'unrelated job' });
    s.end();
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'operator' && r.action === 'session_ended'), 5000)).toBe(true);
    const list = (await control(h, 'GET', '/v1/approvals')).body.approvals as { id: string }[];
    expect((await control(h, 'POST', `/v1/approvals/${list[0]?.id}/approve`, {})).status).toBe(200);
    await closed;
    const denies = h.auditRecords().filter((r) => r.type === 'deny').map((r) => r.reason);
    expect({ status: got.slice(0, 12), denies }).toEqual({ status: 'HTTP/1.1 200', denies: [] });
    expect(h.upstream.requests.some((r) => r.url === '/v1/merge' && r.headers.authorization === `Bearer ${h.canary}`)).toBe(true);
    expect(findCanary(h, [got])).toEqual([]);
  }, 40_000);
});
