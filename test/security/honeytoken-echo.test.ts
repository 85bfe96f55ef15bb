import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaksIn } from '../helpers/secret-forms.js';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';

// Red-team: a `honeytoken: true` secret is still injected where bound (its use is audited as honeytoken_triggered,
// decision allowed), but scrubbedSecretsOf() leaves honeytokens out of the response scrubber ("decoys with no value
// to echo"). An upstream that echoes the header hands the real value to the agent.
const TRAP_PH = 'tr-PLACEHOLDER-TRAP-0123456789abcdef';
const TRAP = `trap-${randomBytes(12).toString('hex')}`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { TRAP_KEY: TRAP },
    secrets: `
  TRAP_KEY:
    placeholder: "${TRAP_PH}"
    honeytoken: true
    inject:
      - { header: x-api-key, format: "{TRAP_KEY}" }
      - { header: Authorization, format: "Bearer {TRAP_KEY}" }
    bindings:
      - { host: api.example.test }
`,
  });
});
afterAll(async () => {
  await h.close();
});

describe('honeytoken values', () => {
  it('an injected honeytoken echoed by its bound upstream does not reach the agent', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo-header', { headers: [`Authorization: Bearer ${TRAP_PH}`] });
    expect(r.status, r.stderr).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${TRAP}`); // it was injected
    const seen = JSON.stringify(r.headers) + r.body;
    expect(leaksIn(seen, TRAP)).toEqual([]);
  });
});
