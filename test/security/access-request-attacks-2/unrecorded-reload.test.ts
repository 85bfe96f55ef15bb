import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../../helpers/harness.js';

/*
 * The root of failed-approve-leaves-no-binding: keyswap applied a reload even when the audit log could not take
 * its config_reload record. A binding added while the log was failing (by approve, or by hand) then carried the
 * secret once the log recovered, with no record that it was ever loaded. A reload may permit something, so it is
 * recorded before it takes effect, and not applied when it cannot be.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/v1/**"] }
`,
  });
}, 60_000);
afterAll(async () => { await h?.close(); });

/** A PUT the widened binding would cover; true when the upstream got the real value (never printed). */
async function putCarriesSecret(): Promise<boolean> {
  const seen = h.upstream.requests.length;
  const r = await curlVia(h, 'https://api.example.test/v1/echo', { method: 'PUT', data: '{}', headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
  expect(r.status).toBe(200);
  expect(h.upstream.requests.length).toBe(seen + 1);
  return String(h.upstream.requests.at(-1)?.headers.authorization ?? '').includes(h.canary);
}

describe('a reload the audit log cannot record', () => {
  it('is not applied: a binding added while the log fails carries nothing once the log recovers', async () => {
    expect(await putCarriesSecret()).toBe(false);
    // The audit log fails: replaced by a file others may write, which keyswap refuses to append to.
    renameSync(h.auditPath, `${h.auditPath}.moved`);
    writeFileSync(h.auditPath, '');
    chmodSync(h.auditPath, 0o666);
    const config = path.join(h.dir, 'keyswap.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace('methods: [GET]', 'methods: [GET, PUT]'));
    h.child.kill('SIGHUP');
    // Its outcome is logged, not recorded (the log cannot take it); bounded, since keyswap before this fix said nothing.
    const refusedLogged = await waitFor(() => `${h.stdout()}${h.stderr()}`.includes('reload refused: the audit log cannot record it'), 5_000);
    // The log recovers (the writer retries with backoff); the reload it could not record stays unapplied.
    chmodSync(h.auditPath, 0o600);
    let ok = false;
    for (let i = 0; i < 120 && !ok; i++) {
      ok = (await curlVia(h, 'http://keyswap.invalid/healthz').catch(() => ({ status: 0 }))).status === 200;
      if (!ok) await new Promise((r) => setTimeout(r, 500));
    }
    expect(ok, 'the audit log recovers').toBe(true);
    expect({ carries: await putCarriesSecret(), refusedLogged }, 'an unrecorded reload\'s binding carries the secret').toEqual({ carries: false, refusedLogged: true });
    // Reloaded again once the log can record it, the binding applies, on the record.
    h.child.kill('SIGHUP');
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'config_reload' && r.ok === true), 10_000)).toBe(true);
    expect(await putCarriesSecret()).toBe(true);
    expect(findCanary(h)).toEqual([]);
  }, 120_000);
});
