import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { agentGet, control, openSession, sha } from './util.js';

/*
 * Attack (goal 5 / 2): two operators act at once during an incident: one lifts the lockdown while the other revokes
 * the compromised client. Operator.setLockdown(off) computes the lifted record before its file write and assigns it
 * after, so a revocation that lands during that write is overwritten in memory: the next change of clients (any
 * `keyswap run` session, a reload) admits the revoked client again. Revocation and lifting commute: whatever the
 * order, the client must stay revoked.
 */

const PH = 'sk-PLACEHOLDER-ATK28R-0123456789abcde';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
`;
const N = 12;
const tokenOf = (i: number): string => `ks_attack28-race-client-${i}-0123456789`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: a revocation racing the lifting of a lockdown', () => {
  it('a client revoked while the lockdown is being lifted stays revoked (memory and status), and gets no secret afterwards', async () => {
    const clients = Array.from({ length: N }, (_, i) => `  c${i}: { token_sha256: "${sha(tokenOf(i))}", secrets: [TEST_API_KEY] }`).join('\n');
    h = await startHarness({ secrets: SECRETS, top: `clients:\n${clients}\n  parent: { token_sha256: "${sha('ks_attack28-parent-0123456789')}", secrets: [TEST_API_KEY] }\n` });
    const lost: string[] = [];
    for (let i = 0; i < N; i++) {
      expect((await control(h, 'POST', '/v1/lockdown', { on: true, reason: 'incident' })).status).toBe(200);
      const off = control(h, 'POST', '/v1/lockdown', { on: false });
      // Spread the revocation over the lift's audit append and file write.
      await new Promise((r) => setTimeout(r, i % 4));
      const rev = control(h, 'POST', `/v1/clients/c${i}/revoke`, {});
      const [a, b] = await Promise.all([off, rev]);
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      const status = await control(h, 'GET', '/v1/status');
      const revoked = (status.body.revoked as { client: string }[]).map((r) => r.client);
      if (!revoked.includes(`c${i}`)) lost.push(`c${i}`);
    }
    // Any change of the clients (a session of keyswap run) recomputes who is admitted from the operator's record.
    const s = await openSession(h, { parent: 'parent', command: 'anything' });
    const injectedFor: string[] = [];
    for (const name of lost) {
      const before = h.upstream.requests.length;
      await agentGet(h, `${name}:${tokenOf(Number(name.slice(1)))}`, `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`);
      if (h.upstream.requests.slice(before).some((r) => r.headers.authorization === `Bearer ${h.canary}`)) injectedFor.push(name);
    }
    s.end();
    expect({ lostRevocations: lost, revokedClientsInjectedAgain: injectedFor }).toEqual({ lostRevocations: [], revokedClientsInjectedAgain: [] });
  });
});
