import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { agentGet, control } from './util.js';

/*
 * Attack (detection bypass, same shape as attack #149): a compromised agent probes while the operator has locked
 * keyswap down. A honeytoken's placeholder sent to its bound host is refused as `lockdown` before the honeytoken is
 * recorded, so no honeytoken_triggered record (and no alert) — exactly while the operator is investigating.
 */

const TRAP_PH = 'sk-PLACEHOLDER-ATK28-TRAP-0123456789a';
const SECRETS = `
  TRAP_KEY:
    placeholder: "${TRAP_PH}"
    honeytoken: true
    inject: { header: x-api-key, format: "{TRAP_KEY}" }
    bindings:
      - { host: api.example.test }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: lockdown and honeytokens', () => {
  it('a honeytoken used on its bound host during lockdown is still recorded as honeytoken_triggered', async () => {
    h = await startHarness({ secrets: SECRETS, secretValues: { TRAP_KEY: 'trap-decoy-value-0123456789' } });
    expect((await control(h, 'POST', '/v1/lockdown', { on: true, reason: 'investigating' })).status).toBe(200);
    const answer = await agentGet(h, null, `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nX-Api-Key: ${TRAP_PH}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'honeytoken_triggered' && r.secret_name === 'TRAP_KEY'), 3000),
      JSON.stringify(h.auditRecords().filter((r) => r.type === 'deny'))).toBe(true);
  });
});
