import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { agentGet, control } from './util.js';

/*
 * operatorPath() cuts the path at 512 characters with no mark: the operator approves what looks like a scratch file
 * while the request names another object. (Row 158: "the waiting room shows the whole path".)
 */
const PH = 'sk-PLACEHOLDER-ATK28B-TRN-0123456789abc';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [DELETE], paths: ["/v1/objects/**"], approve: { timeout_seconds: 5 } }
`;
let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: a long path in the waiting room', () => {
  it('is shown whole, or visibly cut', async () => {
    h = await startHarness({ secrets: SECRETS });
    const real = `/v1/objects/tmp/scratch-${'x'.repeat(520)}/prod-db-backup`;
    const pending = agentGet(h, null, `DELETE ${real} HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const shown = ((await control(h, 'GET', '/v1/approvals')).body.approvals as { path: string }[])[0]?.path ?? '';
    const ok = shown === real || /…|\.\.\.|\(cut\)|truncated/.test(shown);
    expect({ ok, shownTail: shown.slice(-20), realTail: real.slice(-20) }).toMatchObject({ ok: true });
    await pending;
  }, 30_000);
});
