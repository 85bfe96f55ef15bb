import { afterEach, describe, expect, it } from 'vitest';
import { rawTlsVia } from '../../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { control, reloadWith, sha } from './util.js';

/*
 * Attacks on `approve:` (goal 2): what the operator is shown is what gets approved, and a remembered approval covers
 * client + binding + method, where "client" is the credential an operator approved, not a name that can be reissued.
 */

const PH = 'sk-PLACEHOLDER-ATK28A-0123456789abcde';
const TOKEN = 'ks_attack28-approve-agent-0123456789';
const TOKEN2 = 'ks_attack28-approve-agent-REISSUED-01';

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/**"], approve: { timeout_seconds: 30 } }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

/** Sends a request and leaves it waiting; the answer resolves once the connection closes (bounded). */
async function hold(auth: string | null, request: string): Promise<{ answer: Promise<string> }> {
  const t = await rawTlsVia(h, 'api.example.test', 443, {}, auth);
  let got = '';
  t.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  t.on('error', () => {});
  t.write(request);
  return { answer: new Promise<string>((resolve) => {
    const timer = setTimeout(() => { t.destroy(); resolve(got); }, 20_000);
    t.once('close', () => { clearTimeout(timer); resolve(got); });
  }) };
}

const post = (p: string): string => `POST ${p} HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;

async function pending(): Promise<{ id: string; path: string; client: string | null }[]> {
  const r = await control(h, 'GET', '/v1/approvals');
  return r.body.approvals as { id: string; path: string; client: string | null }[];
}

describe('operator attacks: approvals', () => {
  it('the operator is shown the path the held request will go to, not only its first two segments', async () => {
    h = await startHarness({ secrets: SECRETS });
    const { answer } = await hold(null, post('/v1/repos/victim-org/production/delete'));
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const [p] = await pending();
    // What `keyswap approvals` and the console show, and the operator approves.
    expect(p?.path).toBe('/v1/repos/victim-org/production/delete');
    await control(h, 'POST', `/v1/approvals/${p?.id}/deny`, {});
    await answer;
  });

  it('a remembered approval does not carry over to a new token issued under the same client name (revoke, then add)', async () => {
    h = await startHarness({ secrets: SECRETS, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n` });
    const { answer: first } = await hold(`agent-a:${TOKEN}`, post('/v1/merge'));
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const [p] = await pending();
    expect((await control(h, 'POST', `/v1/approvals/${p?.id}/approve`, { remember_seconds: 3600 })).status).toBe(200);
    expect((await first).slice(0, 12)).toBe('HTTP/1.1 200');
    // The operator revokes agent-a (its token leaked) and, as `keyswap client add` says, issues a new one under the
    // same name; the new holder is a different credential the operator never approved anything for.
    expect((await control(h, 'POST', '/v1/clients/agent-a/revoke', {})).status).toBe(200);
    await reloadWith(h, (y) => y.replace(sha(TOKEN), sha(TOKEN2)));
    const before = h.upstream.requests.length;
    const { answer: second } = await hold(`agent-a:${TOKEN2}`, post('/v1/merge'));
    await new Promise((r) => setTimeout(r, 1500));
    const sent = h.upstream.requests.slice(before).filter((r) => r.headers.authorization === `Bearer ${h.canary}`);
    const remembered = h.auditRecords().filter((r) => r.type === 'approval' && r.by === 'remembered');
    for (const q of await pending()) await control(h, 'POST', `/v1/approvals/${q.id}/deny`, {});
    await second;
    expect({ sentWithoutApproval: sent.length, remembered: remembered.length }).toEqual({ sentWithoutApproval: 0, remembered: 0 });
    expect(findCanary(h)).toEqual([]);
  }, 60_000);
});
