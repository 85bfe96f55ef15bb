import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../helpers/harness.js';
import { agentGet } from './util.js';

/*
 * The audit file (and so the console's live feed and alerts) is kept free of placeholders: path segments and
 * methods holding the marker are masked (audit-facts.ts). The destination host is not: a CONNECT to a host name
 * that is the placeholder (a valid DNS label) puts the stand-in into the audit record's destination.host.
 */
const PH = 'sk-PLACEHOLDER-ATK28B-HST-0123456789abc';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
`;
let h: Harness;
afterEach(async () => { await h?.close(); });

describe('operator attacks: a placeholder as the CONNECT host', () => {
  it('never reaches the audit log (and so the console feed) as the destination', async () => {
    h = await startHarness({ secrets: SECRETS });
    const got = await agentGet(h, null, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', `${PH}.example.test`);
    await new Promise((r) => setTimeout(r, 1000));
    const audit = h.auditText();

    expect(audit.toUpperCase().includes(PH.toUpperCase())).toBe(false);
  }, 30_000);
});
