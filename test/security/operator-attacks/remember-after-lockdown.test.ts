import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { agentGet, control, sha } from './util.js';

/*
 * Remembered approvals outlive a lockdown: the operator pulls the brake because the agent misbehaves, lifts it to
 * resume the other agents, and the misbehaving agent's hour-long "remember" still lets it through unasked.
 */
const PH = 'sk-PLACEHOLDER-ATK28B-LCK-0123456789abc';
const TOKEN = 'ks_attack28b-lockrem-0123456789abcde';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/merge"], approve: { timeout_seconds: 3, remember_seconds: 3600 } }
`;
let h: Harness;
afterEach(async () => { await h?.close(); });
const post = `POST /v1/merge HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;

describe('operator attacks: remembered approvals across a lockdown', () => {
  it('a lockdown forgets what was remembered: the next request after it is lifted is asked again', async () => {
    h = await startHarness({ secrets: SECRETS, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n` });
    const auth = `agent-a:${TOKEN}`;
    const first = agentGet(h, auth, post);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const list = (await control(h, 'GET', '/v1/approvals')).body.approvals as { id: string }[];
    expect((await control(h, 'POST', `/v1/approvals/${list[0]?.id}/approve`, {})).status).toBe(200);
    expect((await first).slice(0, 12)).toBe('HTTP/1.1 200');
    expect((await control(h, 'POST', '/v1/lockdown', { on: true, reason: 'agent-a misbehaves' })).status).toBe(200);
    expect((await agentGet(h, auth, post)).slice(0, 12)).toBe('HTTP/1.1 503');
    expect((await control(h, 'POST', '/v1/lockdown', { on: false })).status).toBe(200);
    const after = await agentGet(h, auth, post);
    const steps = h.auditRecords().filter((r) => r.type === 'approval').map((r) => `${r.step}:${r.by}`);
    expect({ after: after.slice(0, 12), steps }).toEqual({ after: 'HTTP/1.1 403', steps: ['requested:null', 'granted:cli', 'requested:null', 'expired:null'] });
  }, 40_000);
});
