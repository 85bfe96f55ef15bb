import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { startParentProxy, type ParentProxy } from '../helpers/parent-proxy.js';
import { createTestCa } from '../helpers/test-ca.js';

// upstream.proxy: every upstream connection keyswap makes (MITM'd requests, opaque tunnels, token endpoints) is a
// CONNECT through the corporate proxy, with strict TLS to the real upstream inside it; no_proxy names exceptions.
const PROXY_CREDENTIALS = 'corp-user:corp-pass-0123456789';
const PH_CC = 'oauth-cc-PLACEHOLDER-0123456789abcdef';
const CC_SECRET = 'cc-secret-via-parent-0123456789';

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
      - { host: other.example.test }
  CC_TOKEN:
    placeholder: "${PH_CC}"
    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.test/oauth2/token", client_auth_method: body_post, client_id_secret: CC_ID, client_secret_secret: CC_SECRET }
    bindings: [{ host: api.example.test, paths: ["/v1/minted/**"] }]
`;

const relayed = (p: ParentProxy): string => p.seen.map((s) => `${s.up.toString('latin1')}${s.down.toString('latin1')}`).join('');

describe('a parent proxy with credentials', () => {
  let h: Harness;
  let parent: ParentProxy;
  let auth: FakeAuthorities;
  beforeAll(async () => {
    parent = await startParentProxy({ credentials: PROXY_CREDENTIALS, resolve: () => h.resolved });
    const testCa = createTestCa();
    auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { 'cc-id': CC_SECRET } });
    h = await startHarness({
      testCa,
      secrets: SECRETS,
      secretValues: { CORP_PROXY: PROXY_CREDENTIALS, CC_ID: 'cc-id', CC_SECRET },
      resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
      upstreamLines: `  proxy: ${parent.url}\n  proxy_credentials: CORP_PROXY\n  no_proxy: [other.example.test, 10.0.0.0/8]`,
    });
  });
  afterAll(async () => {
    await h.close();
    await parent.close();
    await auth.close();
  });

  it('a MITM\'d request reaches the upstream with the secret, and the parent saw a CONNECT and TLS bytes only', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    // The parent is asked for the name, which it resolves (and filters by) itself: never upstream.resolve's address.
    const connect = parent.seen.find((s) => s.authority === 'api.example.test:443' && s.status === 200);
    expect(parent.seen.some((s) => s.authority.startsWith('127.0.0.1:'))).toBe(false);
    expect(connect?.proxyAuthorization).toBe(`Basic ${Buffer.from(PROXY_CREDENTIALS).toString('base64')}`);
    // The SNI is the name the agent asked for; nothing of the request is readable by the parent.
    expect(connect?.up.toString('latin1')).toContain('api.example.test');
    expect(relayed(parent)).not.toContain(h.canary);
    expect(relayed(parent)).not.toContain(PLACEHOLDER);
    expect(relayed(parent)).not.toContain('/v1/echo');
  });

  it('an opaque tunnel to an unbound host goes through the parent too', async () => {
    const before = parent.seen.length;
    const r = await curlVia(h, 'https://unbound.example.test/v1/echo', { cacert: h.testCaPath });
    expect(r.status).toBe(200);
    expect(parent.seen.slice(before).some((s) => s.authority === 'unbound.example.test:443' && s.status === 200)).toBe(true);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'tls_passthrough' && JSON.stringify(e.destination).includes('unbound.example.test')))).toBe(true);
  });

  it('a token endpoint is dialled through the parent', async () => {
    const before = parent.seen.length;
    const r = await curlVia(h, 'https://api.example.test/v1/minted/echo', { headers: [`Authorization: Bearer ${PH_CC}`] });
    expect(r.status).toBe(200);
    expect(auth.calls.length).toBeGreaterThan(0);
    expect(parent.seen.slice(before).some((s) => s.authority === 'auth.example.test:443' && s.status === 200)).toBe(true);
    expect(relayed(parent)).not.toContain(CC_SECRET);
  });

  it('a host no_proxy names is dialled directly', async () => {
    const before = parent.seen.length;
    const r = await curlVia(h, 'https://other.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(parent.seen.length).toBe(before);
  });

  it('explain and doctor know the parent: which hosts go through it, and whether it accepts the credentials', async () => {
    // Asynchronous: the parent proxy runs in this process and must answer while the command runs.
    const cli = async (args: string[], env: Record<string, string> = {}): Promise<string> =>
      (await cliCollect([...args, '--config', path.join(h.dir, 'keyswap.yaml')], { env: { HOME: h.dir, ...env } })).stdout;
    expect(await cli(['explain', 'POST', 'https://api.example.test/v1/echo'])).toContain(`upstream: dialled through the parent proxy 127.0.0.1:${parent.port} with CONNECT (credentials: secret CORP_PROXY)`);
    expect(await cli(['explain', 'GET', 'https://other.example.test/v1/echo'])).toContain('upstream: dialled directly (upstream.no_proxy names other.example.test)');
    expect(await cli(['doctor'], { KEYSWAP_SECRET_CORP_PROXY: PROXY_CREDENTIALS })).toContain(`ok parent proxy 127.0.0.1:${parent.port} answers CONNECT api.example.test:443 with the credentials in secret CORP_PROXY`);
    expect(await cli(['doctor'], { KEYSWAP_SECRET_CORP_PROXY: 'corp-user:wrong' })).toContain(`!! parent proxy 127.0.0.1:${parent.port} refused keyswap's credentials (407)`);
  });

  it('the proxy credentials and the secrets appear in no log or audit line', () => {
    expect(findCanary(h, [relayed(parent)])).toEqual([]);
    for (const text of [h.stdout(), h.stderr(), h.auditText()]) {
      expect(text).not.toContain(PROXY_CREDENTIALS);
      expect(text).not.toContain(Buffer.from(PROXY_CREDENTIALS).toString('base64'));
    }
  });
});

describe('a parent proxy that fails', () => {
  it('wrong credentials: 502 parent_proxy_failed, audited, nothing sent upstream', async () => {
    const parent = await startParentProxy({ credentials: 'someone:else' });
    const h = await startHarness({ secretValues: { CORP_PROXY: PROXY_CREDENTIALS }, upstreamLines: `  proxy: ${parent.url}\n  proxy_credentials: CORP_PROXY` });
    try {
      const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(r.status).toBe(502);
      expect(r.body).toContain('parent proxy');
      expect(h.upstream.requests).toHaveLength(0);
      expect(parent.seen.at(-1)?.status).toBe(407);
      expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'deny' && e.reason === 'parent_proxy_failed'))).toBe(true);
      expect(h.stdout() + h.stderr()).toContain('407');
      expect(findCanary(h)).toEqual([]);
    } finally {
      await h.close();
      await parent.close();
    }
  });

  it('a hostile parent that connects elsewhere meets strict TLS: 502 upstream_untrusted, the secret never sent', async () => {
    let to = { host: '127.0.0.1', port: 1 };
    // The parent sends every tunnel to a server whose certificate keyswap does not trust.
    const hostile = await startParentProxy({ redirectTo: () => to });
    const h = await startHarness({ upstreamLines: `  proxy: ${hostile.url}` });
    to = { host: '127.0.0.1', port: h.untrustedUpstream.port };
    try {
      const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(r.status).toBe(502);
      expect(r.body).toContain('certificate');
      expect(hostile.seen.some((s) => s.status === 200)).toBe(true);
      expect(relayed(hostile)).not.toContain(h.canary);
      expect(findCanary(h)).toEqual([]);
    } finally {
      await h.close();
      await hostile.close();
    }
  });
});
