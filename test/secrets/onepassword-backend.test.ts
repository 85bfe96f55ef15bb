import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeOnePassword } from '../helpers/fake-onepassword.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 4: the onepassword backend (1Password Connect) against a local server speaking Connect's
 * documented REST API (test/helpers/fake-onepassword.ts), through a real keyswap.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PH2 = 'gh-PLACEHOLDER-GGGGGGGGGGGGGGGGGGGGGGG';

describe('onepassword backend', () => {
  it('items by title, a field by label, rotation, outage and recovery, a duplicated title refused; nothing leaks', async () => {
    const ca = createTestCa();
    const op = await startFakeOnePassword(ca);
    const vault = op.vault('Agents');
    const itemId = op.item(vault, 'TEST_API_KEY', [{ label: 'username', value: 'bot' }, { label: 'credential', value: 'op-first-value' }]);
    op.item(vault, 'github', [{ label: 'token', value: 'op-github-token' }, { label: 'password', value: 'op-github-password', purpose: 'PASSWORD' }]);
    const w = tempWorld('op');
    const tokenFile = w.write('connect-token', op.token, 0o600);
    const h = await startHarness({
      testCa: ca,
      backend: `backend: { type: onepassword, config: { url: "${op.url}", token_file: ${tokenFile}, vault: Agents, ca_file: ${w.write('ca.pem', ca.certPem)} } }`,
      top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }',
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  GITHUB:
    placeholder: "${PH2}"
    inject: { header: X-Token, format: "{GITHUB}" }
    backend: { path: github, field: token }
    bindings: [ { host: other.example.test } ]
`,
    });
    const get = (): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/x', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    try {
      expect((await get()).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer op-first-value');
      expect((await curlVia(h, 'https://other.example.test/v1/x', { headers: [`X-Token: ${PH2}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers['x-token']).toBe('op-github-token');

      op.item(vault, 'TEST_API_KEY', [{ label: 'credential', value: 'op-rotated-value' }], itemId);
      await sleep(1200);
      expect((await get()).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer op-rotated-value');

      op.mode = 'down';
      await sleep(1200);
      expect((await get()).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/listing items titled TEST_API_KEY answered 503 \(service unavailable\)/);
      op.mode = 'ok';
      await sleep(1100);
      expect((await get()).status).toBe(200);

      op.item(vault, 'TEST_API_KEY', [{ label: 'credential', value: 'op-duplicate-value' }]);
      await sleep(1200);
      expect((await get()).status).toBe(503);
      expect(h.stdout() + h.stderr()).toMatch(/more than one item is titled TEST_API_KEY \(ids [a-f0-9]{26}, [a-f0-9]{26}\)/);
      for (const text of [h.stdout(), h.stderr(), h.auditText()]) {
        for (const v of ['op-first-value', 'op-rotated-value', 'op-github-token', 'op-github-password', 'op-duplicate-value', op.token]) expect(text).not.toContain(v);
      }
    } finally {
      await h.close();
      await op.close();
    }
  });

  it('a refused token or an unknown vault stops keyswap at start with the reason; doctor says why a field is missing', async () => {
    const ca = createTestCa();
    const op = await startFakeOnePassword(ca);
    const vault = op.vault('Agents');
    op.item(vault, 'K', [{ label: 'api key', value: 'op-doctor-value' }]);
    const w = tempWorld('op-start');
    const config = (token: string, vaultName: string): string => w.write('keyswap.yaml', `version: 1\nstate_dir: ${w.dir}/state\nbackend: { type: onepassword, config: { url: "${op.url}", token_file: ${w.write('t', token, 0o600)}, vault: ${vaultName}, ca_file: ${w.write('ca.pem', ca.certPem)} } }\nsecrets:\n  K:\n    placeholder: "${PLACEHOLDER}"\n    inject: { header: Authorization, format: "Bearer {K}" }\n    bindings: [ { host: api.example.com } ]\n`);
    const badToken = await cliCollect(['serve', '--config', config('not-the-token', 'Agents')]);
    expect(badToken.code).toBe(2);
    expect(badToken.stderr).toContain('onepassword backend: the Connect token was refused (401 Invalid token signature)');
    const badVault = await cliCollect(['serve', '--config', config(op.token, 'Nope')]);
    expect(badVault.code).toBe(2);
    expect(badVault.stderr).toContain('onepassword backend: no vault named Nope is shared with this Connect token');
    const doctor = await cliCollect(['doctor', '--config', config(op.token, 'Agents')]);
    expect(doctor.stdout).toContain("item K has no password or credential field (fields: api key); set field: in the config");
    expect(doctor.stdout + doctor.stderr + badToken.stderr).not.toMatch(/op-doctor-value|not-the-token/);
    await op.close();
  });
});
