import { afterEach, describe, expect, it } from 'vitest';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';
import { agentGet } from './util.js';

/*
 * decide() picks the FIRST binding in file order that is in scope (judge(): allowed[0]). A binding under approve:
 * that is listed after a broader binding of the same secret never holds anything: the request goes by the broader
 * one, with no operator asked. The config says "DELETE /v1/admin/** needs a human"; keyswap sends it at once.
 */
const PH = 'sk-PLACEHOLDER-ATK28B-OVL-0123456789abc';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, paths: ["/v1/**"] }
      - { host: api.example.test, methods: [DELETE], paths: ["/v1/admin/**"], approve: { timeout_seconds: 3 } }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: approve: on an overlapping binding', () => {
  it('a request the approve: binding covers is held, whatever the order of the bindings', async () => {
    h = await startHarness({ secrets: SECRETS });
    const got = await agentGet(h, null, `DELETE /v1/admin/users/42 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`);
    await waitFor(() => false, 300);
    const sent = h.upstream.requests.filter((r) => r.url.startsWith('/v1/admin/users/42') && r.headers.authorization === `Bearer ${h.canary}`);
    const steps = h.auditRecords().filter((r) => r.type === 'approval').map((r) => r.step);
    expect({ status: got.slice(0, 12), sentWithSecret: sent.length, steps }).toEqual({ status: 'HTTP/1.1 403', sentWithSecret: 0, steps: ['requested', 'expired'] });
    expect(findCanary(h, [got])).toEqual([]);
  }, 30_000);
});
