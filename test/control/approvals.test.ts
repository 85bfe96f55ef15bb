import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { createTestCa } from '../helpers/test-ca.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { cliCollect } from '../helpers/cli.js';
import { rawTlsVia } from '../helpers/clients.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

/*
 * Issue #28: a binding's `approve:` holds a matching request — nothing upstream, the agent's connection kept — until
 * an operator answers with `keyswap approve` / `keyswap deny`, or its time runs out. Each step is an audit record.
 */

const SECRETS = (approve: string): string => `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/merge"], approve: ${approve} }
      - { host: api.example.test, methods: [GET] }
`;

let h: Harness;
afterEach(async () => { await h?.close(); });

const configPath = (): string => path.join(h.dir, 'keyswap.yaml');
const op = (...args: string[]): ReturnType<typeof cliCollect> => cliCollect([...args, '--config', configPath()], { cwd: h.dir });

/** Sends one request on a fresh decrypted connection; resolves with the whole answer once the connection closes or answers. */
async function send(request: string): Promise<{ answer: Promise<string> }> {
  const t = await rawTlsVia(h, 'api.example.test', 443, {});
  let got = '';
  t.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  t.on('error', () => {});
  t.write(request);
  const answer = new Promise<string>((resolve) => {
    const done = (): void => resolve(got);
    t.once('close', done);
    const poll = setInterval(() => {
      if (/\r\n\r\n/.test(got) && (/content-length: 0\r\n/i.test(got) || /\r\n\r\n[\s\S]+/.test(got))) {
        clearInterval(poll);
        setTimeout(() => { t.destroy(); }, 50);
      }
    }, 20);
    t.once('close', () => clearInterval(poll));
  });
  return { answer };
}

const merge = (method = 'POST', body = '{"pr":7}'): string => `${method} /v1/merge HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

async function pendingIds(): Promise<string[]> {
  const r = await op('approvals', '--json');
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { id: string }[]).map((a) => a.id);
}

describe('approve: holds a request until an operator answers', () => {
  it('approved: the held request completes 200 with the secret; the upstream saw nothing before; audit: requested, granted, then the decision', async () => {
    h = await startHarness({ secrets: SECRETS('{ timeout_seconds: 60 }') });
    const { answer } = await send(merge());
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'requested'), 5000)).toBe(true);
    const [id] = await pendingIds();
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    // Held: a second in the waiting room, and nothing upstream.
    await new Promise((r) => setTimeout(r, 1000));
    expect(h.upstream.requests.filter((r) => r.url === '/v1/merge')).toEqual([]);
    const listed = await op('approvals');
    expect(listed.stdout).toContain(`${id}  (no client)  POST api.example.test/v1/merge  secrets TEST_API_KEY`);
    const ok = await op('approve', id as string);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await answer).slice(0, 12)).toBe('HTTP/1.1 200');
    const seen = h.upstream.requests.find((r) => r.url === '/v1/merge');
    expect(seen?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(seen?.body.toString()).toBe('{"pr":7}');
    const steps = h.auditRecords().filter((r) => ['approval', 'inject_decision', 'operator'].includes(r.type as string)).map((r) => (r.type === 'approval' ? `approval:${String(r.step)}:${String(r.by)}` : r.type === 'operator' ? `operator:${String(r.action)}` : `${String(r.type)}:${String(r.decision)}`));
    expect(steps).toEqual(['approval:requested:null', 'approval:granted:cli', 'inject_decision:allowed']);
    expect(await pendingIds()).toEqual([]);
    expect(findCanary(h, [listed.stdout])).toEqual([]);
  });

  it('denied: 403 approval_denied, nothing upstream, audited with who', async () => {
    h = await startHarness({ secrets: SECRETS('true') });
    const { answer } = await send(merge());
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval'), 5000)).toBe(true);
    const [id] = await pendingIds();
    const no = await op('deny', id as string);
    expect(no.code, no.stderr).toBe(0);
    const text = await answer;
    expect(text.slice(0, 12)).toBe('HTTP/1.1 403');
    expect(text).toContain('an operator denied this request');
    expect(h.upstream.requests.filter((r) => r.url === '/v1/merge')).toEqual([]);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'denied' && r.by === 'cli'), 3000)).toBe(true);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'deny' && r.reason === 'approval_denied' && r.status === 403), 3000)).toBe(true);
    // Answered once: a second answer names the problem.
    const again = await op('approve', id as string);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/no request waits for approval under/);
  });

  it('no answer in time: 403 approval_timeout, audited as expired', async () => {
    h = await startHarness({ secrets: SECRETS('{ timeout_seconds: 2 }') });
    const { answer } = await send(merge());
    const text = await answer;
    expect(text.slice(0, 12)).toBe('HTTP/1.1 403');
    expect(text).toContain('none came in time');
    expect(h.upstream.requests.filter((r) => r.url === '/v1/merge')).toEqual([]);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval' && r.step === 'expired' && r.by === null), 3000)).toBe(true);
  });

  it('remember: an approval with --remember lets the same client, binding and method through; another method is still held', async () => {
    h = await startHarness({ secrets: SECRETS('{ timeout_seconds: 3 }').replace('methods: [POST]', 'methods: [POST, PUT]') });
    const first = await send(merge());
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval'), 5000)).toBe(true);
    const [id] = await pendingIds();
    expect((await op('approve', id as string, '--remember', '1h')).code).toBe(0);
    expect((await first.answer).slice(0, 12)).toBe('HTTP/1.1 200');
    expect(h.auditRecords().some((r) => r.type === 'approval' && r.step === 'granted' && r.remember_s === 3600)).toBe(true);
    const second = await send(merge());
    expect((await second.answer).slice(0, 12)).toBe('HTTP/1.1 200');
    expect(h.auditRecords().some((r) => r.type === 'approval' && r.step === 'granted' && r.by === 'remembered')).toBe(true);
    const put = await send(merge('PUT'));
    expect((await put.answer).slice(0, 12)).toBe('HTTP/1.1 403');
  });

  it('a declared body over 1 MiB is refused 413 before it is held; an unbound request is never held', async () => {
    h = await startHarness({ secrets: SECRETS('true') });
    const big = await send(`POST /v1/merge HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
    expect((await big.answer).slice(0, 12)).toBe('HTTP/1.1 413');
    const get = await send(`GET /v1/models HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`);
    expect((await get.answer).slice(0, 12)).toBe('HTTP/1.1 200');
    expect(h.auditRecords().filter((r) => r.type === 'approval')).toEqual([]);
  });

  it('lockdown answers what is held: 503 lockdown, and approve is refused while it lasts', async () => {
    h = await startHarness({ secrets: SECRETS('true') });
    const { answer } = await send(merge());
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'approval'), 5000)).toBe(true);
    expect((await op('lockdown')).code).toBe(0);
    expect((await answer).slice(0, 12)).toBe('HTTP/1.1 503');
    expect(h.upstream.requests.filter((r) => r.url === '/v1/merge')).toEqual([]);
  });

  it('alerts: approval_requested (with its id) and lockdown reach a Standard Webhooks receiver; nothing secret in them', async () => {
    const ca = createTestCa();
    const hookSecret = `whsec_${randomBytes(24).toString('base64')}`;
    const receiver = await startWebhookReceiver(ca, hookSecret);
    try {
      h = await startHarness({
        testCa: ca,
        secrets: SECRETS('true'),
        resolve: { 'hooks.example.test:443': `127.0.0.1:${receiver.port}` },
        secretValues: { HOOK_SECRET: hookSecret },
        top: 'alerts:\n  webhooks:\n    - { url: "https://hooks.example.test/keyswap", signing_secret: HOOK_SECRET, events: [approval_requested, lockdown] }',
      });
      const { answer } = await send(merge());
      expect(await waitFor(() => receiver.received.some((r) => r.type === 'approval_requested'), 10_000)).toBe(true);
      const [id] = await pendingIds();
      expect(receiver.received.find((r) => r.type === 'approval_requested')?.data).toMatchObject({ approval_id: id, secret_name: 'TEST_API_KEY', destination: { host: 'api.example.test', method: 'POST', path: '/v1/merge' } });
      expect((await op('lockdown', '--reason', 'alert test')).code).toBe(0);
      expect((await answer).slice(0, 12)).toBe('HTTP/1.1 503');
      expect(await waitFor(() => receiver.received.some((r) => r.type === 'lockdown'), 10_000)).toBe(true);
      expect(receiver.received.find((r) => r.type === 'lockdown')?.data).toEqual({ reason: 'alert test', actor: 'cli' });
      const payloads = JSON.stringify(receiver.received);
      expect(payloads).not.toContain(h.canary);
      expect(payloads).not.toContain(PLACEHOLDER);
    } finally {
      await receiver.close();
    }
  });
});
