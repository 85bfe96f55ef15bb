import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { startFakeOnePassword } from '../../helpers/fake-onepassword.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * attack26: a problem with ONE item (here: an agent with write access to the shared 1Password vault adds a second
 * item titled like a low-value secret) is thrown as BackendUnavailable, which the cache treats as an outage of the
 * whole backend: every other secret of that backend is refused during the backoff, with the other item's error.
 * The agent keeps it going by asking for the poisoned secret whenever the backoff ends.
 */
const LOW = 'lo-PLACEHOLDER-LLLLLLLLLLLLLLLLLLLLLLL';

describe('attack26: one poisoned item backs off the whole backend', () => {
  it('a duplicated title on one item does not refuse the other items of the backend', async () => {
    const ca = createTestCa();
    const op = await startFakeOnePassword(ca);
    const vault = op.vault('Agents');
    op.item(vault, 'TEST_API_KEY', [{ label: 'credential', value: 'op-main-value' }]);
    op.item(vault, 'LOW_VALUE', [{ label: 'credential', value: 'op-low-value' }]);
    op.item(vault, 'LOW_VALUE', [{ label: 'credential', value: 'agent-made' }]); // the agent's duplicate
    const w = tempWorld('a26-op');
    const h = await startHarness({
      testCa: ca,
      backend: `backend: { type: onepassword, config: { url: "${op.url}", token_file: ${w.write('t', op.token, 0o600)}, vault: Agents, ca_file: ${w.write('ca.pem', ca.certPem)} } }`,
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  LOW_VALUE:
    placeholder: "${LOW}"
    inject: { header: X-Low, format: "{LOW_VALUE}" }
    bindings: [ { host: other.example.test } ]
`,
    });
    try {
      expect((await curlVia(h, 'https://other.example.test/v1/x', { headers: [`X-Low: ${LOW}`] })).status).toBe(503);
      const main = await curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      const audit = JSON.stringify(h.auditRecords().at(-1));
      expect({ status: main.status, audit }, 'TEST_API_KEY refused because of LOW_VALUE').toMatchObject({ status: 200 });
    } finally {
      await h.close();
      await op.close();
    }
  });
});
