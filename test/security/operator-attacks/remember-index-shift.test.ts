import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { agentGet, control, reloadWith, sha } from './util.js';

/*
 * A remembered approval was keyed on `${secret}#${bindingIndex}` and survives reloads (now: on what the binding allows).
 * An operator who inserts a new, stricter approve: binding at the top shifts the indices: what was remembered for
 * "GET /v1/public/**" now lets "GET /v1/admin/**" through with no operator asked.
 */
const PH = 'sk-PLACEHOLDER-ATK28B-REM-0123456789abc';
const TOKEN = 'ks_attack28b-remember-0123456789abcd';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/v1/public/**"], approve: { timeout_seconds: 20, remember_seconds: 3600 } }
`;
let h: Harness;
afterEach(async () => { await h?.close(); });

const get = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`;

describe('operator attacks: a remembered approval after a reload reorders bindings', () => {
  it('does not cover another binding that now has the same index', async () => {
    h = await startHarness({ secrets: SECRETS, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n` });
    const auth = `agent-a:${TOKEN}`;
    const first = agentGet(h, auth, get('/v1/public/readme'));
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const list = (await control(h, 'GET', '/v1/approvals')).body.approvals as { id: string }[];
    expect((await control(h, 'POST', `/v1/approvals/${list[0]?.id}/approve`, {})).status).toBe(200);
    expect((await first).slice(0, 12)).toBe('HTTP/1.1 200');
    // The operator adds an admin binding, each request to be approved, at the top.
    await reloadWith(h, (y) => y.replace('    bindings:\n', '    bindings:\n      - { host: api.example.test, methods: [GET], paths: ["/v1/admin/**"], approve: { timeout_seconds: 3, remember_seconds: 0 } }\n'));
    const admin = await agentGet(h, auth, get('/v1/admin/dump'));
    const sent = h.upstream.requests.filter((r) => r.url === '/v1/admin/dump' && r.headers.authorization === `Bearer ${h.canary}`);
    // The expiry's record is written as the refusal goes (nothing waits on it): read once it has landed.
    const stepsNow = (): string[] => h.auditRecords().filter((r) => r.type === 'approval').map((r) => `${r.step}:${r.by}`);
    await waitFor(() => stepsNow().length >= 4, 3000);
    const steps = stepsNow();
    expect({ status: admin.slice(0, 12), sent: sent.length, steps }).toEqual({ status: 'HTTP/1.1 403', sent: 0, steps: ['requested:null', 'granted:cli', 'requested:null', 'expired:null'] });
  }, 40_000);
});
