import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { agentGet, control, openSession, reloadWith, sha } from './util.js';

/*
 * Operator.revoke() looks up sessions before configured clients. A session run-XXXXXX stays in #sessions while a
 * reload adds a configured client of the same name (clients() then shows the configured one, the session is shadowed).
 * `keyswap client revoke run-XXXXXX` (the name status lists as a token client) ends the invisible session and answers
 * 200; the configured client keeps working.
 */
const PH = 'sk-PLACEHOLDER-ATK28B-SES-0123456789abc';
const TOKEN = 'ks_attack28b-parent-0123456789abcdef';
const TOKEN2 = 'ks_attack28b-later-0123456789abcdefg';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
`;
let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: revoking a client named like a live session', () => {
  it('revokes the configured client the operator sees, not the shadowed session', async () => {
    h = await startHarness({ secrets: SECRETS, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n` });
    const s = await openSession(h, { parent: 'agent-a', command: 'job' });
    try {
      await reloadWith(h, (y) => y.replace('clients:\n', `clients:\n  ${s.name}: { token_sha256: "${sha(TOKEN2)}", secrets: [TEST_API_KEY] }\n`));
      const req = `GET /v1/x HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`;
      expect((await agentGet(h, `${s.name}:${TOKEN2}`, req)).slice(0, 12)).toBe('HTTP/1.1 200');
      const listed = ((await control(h, 'GET', '/v1/status')).body.clients as { name: string; kind: string }[]).find((c) => c.name === s.name);
      expect(listed?.kind).toBe('token');
      const r = await control(h, 'POST', `/v1/clients/${s.name}/revoke`);
      expect(r.status).toBe(200);
      const after = await agentGet(h, `${s.name}:${TOKEN2}`, req);
      // Revoked: its next CONNECT is answered 407.
      expect({ kind: r.body.kind, refused: /407/.test(after) }).toEqual({ kind: 'client', refused: true });
    } finally {
      s.end();
    }
  }, 40_000);
});
