import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControl } from '../../../src/control/index.js';
import { askAccess } from '../../../src/mcp/index.js';
import { curlVia } from '../../helpers/clients.js';
import { idOf, operatorCli, sha } from '../../helpers/operator-cli.js';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../../helpers/harness.js';

/*
 * `keyswap approve ar-…` writes the binding, SIGHUPs keyswap and reads the audit log for the config_reload record;
 * then it records the request `accepted`. Two ways that left a binding in force with no `accepted` record:
 *
 * 1. The audit log cannot be written (a full disk, a replaced file). The running keyswap applies the reload
 *    anyway (its config_reload record is dropped); approve sees no record, restores the file and says "the running
 *    keyswap did not load the binding ... stays pending". The running keyswap holds the binding all the same:
 *    once the log recovers, the agent's requests under it carry the secret, with no `accepted` and no
 *    `config_reload` record, and a file and an approvals list that say it was never granted.
 * 2. The request is answered meanwhile (declined in the console, its client revoked, lapsed): the reload has
 *    applied the binding, the `accepted` call gets 404, and the binding stays in the file and in force under a
 *    `declined` record.
 *
 * Either way a failed approve must leave no binding in force.
 */
const TOKEN_A = 'ks_agent-a-token-0123456789abcdef';

let h: Harness;
const { configPath, op, proxyAs: proxyAsClient } = operatorCli(() => h);
const stateDir = (): string => path.join(h.dir, 'state');
const proxyAs = (): string => proxyAsClient('agent-a', TOKEN_A);

/** A request the asked-for binding would cover; true when the upstream got the real value (never printed). */
async function secretWentUpstream(method: string, urlPath: string): Promise<boolean> {
  const seen = h.upstream.requests.length;
  const r = await curlVia(h, `https://api.example.test${urlPath}`, { proxy: proxyAs(), method, data: '{}', headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
  expect(r.status).toBe(200);
  expect(h.upstream.requests.length).toBe(seen + 1);
  const auth = String(h.upstream.requests.at(-1)?.headers.authorization ?? '');
  return auth.includes(h.canary);
}

async function healthy(): Promise<boolean> {
  const r = await curlVia(h, 'http://keyswap.invalid/healthz', { proxy: proxyAs() }).catch(() => ({ status: 0 }));
  return r.status === 200;
}

beforeAll(async () => {
  h = await startHarness({
    top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [TEST_API_KEY] }\n`,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/v1/**"] }
`,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a failed keyswap approve leaves no binding in force', () => {
  it('an audit log that cannot be written: approve says the binding was not loaded, and the running keyswap does not hold it', async () => {
    expect(await secretWentUpstream('PUT', '/v1/echo')).toBe(false);
    const asked = await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['PUT'], paths: ['/v1/**'], reason: 'the task updates records' });
    expect(asked.ok, asked.text).toBe(true);
    const id = idOf(asked.text);
    const fileBefore = readFileSync(configPath(), 'utf8');

    // The audit log fails: replaced by a file others may write, which keyswap refuses to append to.
    renameSync(h.auditPath, `${h.auditPath}.moved`);
    writeFileSync(h.auditPath, '');
    chmodSync(h.auditPath, 0o666);

    const approved = await op('approve', id);
    expect(approved.code).not.toBe(0);
    expect(approved.stderr).toContain('stays pending');
    expect(readFileSync(configPath(), 'utf8')).toBe(fileBefore);

    // The log recovers; the operator was told nothing was loaded, and the request still waits in keyswap approvals.
    chmodSync(h.auditPath, 0o600);
    let ok = false;
    for (let i = 0; i < 120 && !ok; i++) {
      ok = await healthy();
      if (!ok) await new Promise((r) => setTimeout(r, 500));
    }
    expect(ok, 'the audit log recovers').toBe(true);
    expect((await op('approvals')).stdout).toContain(id);
    expect(await secretWentUpstream('PUT', '/v1/echo'), 'a binding approve reported as not loaded carries the secret').toBe(false);
    expect((await op('deny', id)).code).toBe(0);
  }, 120_000);

  it('a request declined while approve runs: the binding is not left in the file or in force under a declined record', async () => {
    expect(await secretWentUpstream('PATCH', '/v1/echo')).toBe(false);
    const asked = await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['PATCH'], paths: ['/v1/**'], reason: 'the task patches records' });
    expect(asked.ok, asked.text).toBe(true);
    const id = idOf(asked.text);
    const fileBefore = readFileSync(configPath(), 'utf8');

    const approving = op('approve', id);
    // Another operator declines it in the console as soon as the file changes (bounded: 15 s).
    let declined = 0;
    for (let i = 0; i < 3000 && declined === 0; i++) {
      if (readFileSync(configPath(), 'utf8') !== fileBefore) declined = (await callControl(stateDir(), 'POST', `/v1/access-requests/${id}/decline`, {})).status;
      else await new Promise((r) => setTimeout(r, 5));
    }
    expect(declined).toBe(200);
    const approved = await approving;
    expect(approved.code).not.toBe(0);

    const records = h.auditRecords().filter((r) => r.type === 'access_request' && r.access_id === id).map((r) => r.step);
    expect(records).toEqual(['requested', 'declined']);
    expect(readFileSync(configPath(), 'utf8')).toBe(fileBefore);
    expect(await secretWentUpstream('PATCH', '/v1/echo'), 'a declined request\'s binding carries the secret').toBe(false);
  }, 60_000);

  it('never shows a secret', () => {
    expect(findCanary(h)).toEqual([]);
  });
});
