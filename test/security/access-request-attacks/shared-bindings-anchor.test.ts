import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askAccess } from '../../../src/mcp/index.js';
import { curlVia } from '../../helpers/clients.js';
import { idOf, operatorCli, sha } from '../../helpers/operator-cli.js';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../../helpers/harness.js';

/*
 * Attack: the operator's config shares one bindings list between two secrets with a YAML anchor and alias (same
 * API, two keys). An agent holding only TEST_API_KEY asks for one more binding for it; `keyswap approvals` shows
 * "TEST_API_KEY → …", and `approve` appends to the anchored list, so OTHER_KEY (another client's secret) gains the
 * binding too: more is granted than the operator was shown.
 */
const TOKEN_A = 'ks_agent-a-token-0123456789abcdef';
const TOKEN_B = 'ks_agent-b-token-0123456789abcdef';
const PH_OTHER = 'sk-PLACEHOLDER-anchor-other-0123456789';
const OTHER_VALUE = 'other-real-value-anchor-0123456789';

let h: Harness;
const { configPath, op, proxyAs } = operatorCli(() => h);

beforeAll(async () => {
  h = await startHarness({
    secretValues: { OTHER_KEY: OTHER_VALUE },
    top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [TEST_API_KEY] }\n  agent-b: { token_sha256: "${sha(TOKEN_B)}", secrets: [OTHER_KEY] }\n`,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: &example-api
      - { host: api.example.test, methods: [GET], paths: ["/v1/**"] }
  OTHER_KEY:
    placeholder: "${PH_OTHER}"
    inject: { header: X-Other, format: "{OTHER_KEY}" }
    bindings: *example-api
`,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('approve on a bindings list shared through a YAML anchor', () => {
  it('accepting a binding for one secret grants nothing to another secret', async () => {
    const post = (): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v2/transfer', { proxy: proxyAs('agent-b', TOKEN_B), method: 'POST', data: '{}', headers: [`X-Other: ${PH_OTHER}`] });
    expect((await post()).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers['x-other']).toBe(PH_OTHER);

    const asked = await askAccess(proxyAs('agent-a', TOKEN_A), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['POST'], paths: ['/v2/**'], reason: 'the task posts transfers' });
    expect(asked.ok, asked.text).toBe(true);
    const id = idOf(asked.text);
    const listed = await op('approvals');
    expect(listed.stdout).toContain(`${id}  agent-a  TEST_API_KEY → api.example.test  methods POST  paths /v2/**`);
    expect(listed.stdout).not.toContain('OTHER_KEY');

    const approved = await op('approve', id);
    if (approved.code !== 0) {
      // Refusing to edit a shared list (and saying so) is a correct answer too; nothing may have changed.
      expect(readFileSync(configPath(), 'utf8')).not.toContain('/v2/**');
      return;
    }
    // TEST_API_KEY's POST /v2 works now, as shown...
    const mine = await curlVia(h, 'https://api.example.test/v2/transfer', { proxy: proxyAs('agent-a', TOKEN_A), method: 'POST', data: '{}', headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(mine.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    // ...and OTHER_KEY, which nobody asked for or was shown, must not have gained it.
    expect((await post()).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers['x-other']).toBe(PH_OTHER);
  });

  it('never shows a secret', () => {
    expect(findCanary(h)).toEqual([]);
    for (const text of [h.auditText(), h.stdout(), h.stderr()]) expect(text).not.toContain(OTHER_VALUE);
  });
});
