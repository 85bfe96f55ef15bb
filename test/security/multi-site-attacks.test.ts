import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCa } from '../helpers/test-ca.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaksIn } from '../helpers/secret-forms.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { playConnection, type AgentResult } from '../helpers/raw-agent.js';
import { respondHeader } from '../helpers/upstream.js';

// Red-team attacks on issue #19: multi-site secrets and the https:// absolute-form entry. Every secret is a canary;
// after each attack, no agent-visible byte holds any echo form of any canary, and the upstream saw each canary only
// under a host its secret is bound to.
const P_BASIC = 'bk-PLACEHOLDER-BASIC-0123456789abcdef';
const P_PATH = 'pk-PLACEHOLDER-PATH-0123456789abcdef';
const P_OTHER = 'ok-PLACEHOLDER-OTHER-0123456789abcdef';
const P_TPL = 'tk-PLACEHOLDER-TPL-0123456789abcdef';

const canaries: Record<string, string> = {
  BASIC_KEY: `basic-${randomBytes(10).toString('hex')}/+=&x`,
  PATH_KEY: `path-${randomBytes(10).toString('hex')}/?#`,
  OTHER_KEY: `other-${randomBytes(10).toString('hex')}`,
  TPL_A: `tpl-${randomBytes(10).toString('hex')}`,
};
const BOUND: Record<string, readonly string[]> = {
  TEST_API_KEY: ['api.example.test'],
  BASIC_KEY: ['api.example.test'],
  PATH_KEY: ['api.example.test'],
  OTHER_KEY: ['other.example.test'],
  TPL_A: ['api.example.test', 'log.example.test'],
};

let h: Harness;
let logServer: https.Server;
const agentBytes: Buffer[] = [];
beforeAll(async () => {
  // log.example.test: an API that keeps the last request's headers and serves them back (a request log, a webhook
  // inspector), bound to TPL like api.example.test.
  const testCa = createTestCa();
  let lastHeaders = '{}';
  const leaf = testCa.issue(['log.example.test']);
  logServer = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    if (req.url === '/v1/last') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(lastHeaders);
      return;
    }
    lastHeaders = JSON.stringify(req.headers);
    res.writeHead(204);
    res.end();
  });
  await new Promise<void>((r) => logServer.listen(0, '127.0.0.1', r));
  h = await startHarness({
    testCa,
    resolve: { 'log.example.test:443': `127.0.0.1:${(logServer.address() as AddressInfo).port}` },
    secretValues: canaries,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject:
      - { header: x-api-key, format: "{TEST_API_KEY}" }
      - { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
  BASIC_KEY:
    placeholder: "${P_BASIC}"
    inject:
      - { type: basic, username: user }
      - { type: query, param: key }
      - { header: X-Goog-Api-Key, format: "{BASIC_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
  PATH_KEY:
    placeholder: "${P_PATH}"
    inject:
      - { type: path }
      - { header: x-path-key, format: "k={PATH_KEY}" }
    bindings:
      - { host: api.example.test }
  OTHER_KEY:
    placeholder: "${P_OTHER}"
    inject:
      - { header: Authorization, format: "Token {OTHER_KEY}" }
      - { header: x-api-key, format: "{OTHER_KEY}" }
    bindings:
      - { host: other.example.test }
  TPL:
    placeholder: "${P_TPL}"
    compose: [TPL_A]
    inject:
      - { header: x-sig, template: "{{ hmac_sha256(TPL_A, 'fixed message') }}" }
      - { type: query, param: sig, template: "{{ TPL_A | sha256 }}" }
    bindings:
      - { host: api.example.test }
      - { host: log.example.test }
`,
  });
  canaries.TEST_API_KEY = h.canary;
});
afterAll(async () => {
  await h.close();
  await new Promise<void>((r) => logServer.close(() => r()));
});

async function play(requests: string[], pipelined = false, connect: string | null = null): Promise<AgentResult> {
  const r = await playConnection({
    proxyPort: h.proxyPort,
    connect: connect === null ? null : { host: connect, port: 443, proxyAuth: 'Basic eDp4', caPem: h.caPem },
    requests: requests.map((s) => ({ bytes: Buffer.from(s, 'latin1'), method: s.split(' ')[0] ?? 'GET' })),
    pipelined,
    deadlineMs: 10_000,
  });
  agentBytes.push(r.raw);
  return r;
}

/** Every echo form of every canary (and, for TPL, what its templates render) that appears in `text`. */
function leaks(text: string): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(canaries)) {
    for (const f of leaksIn(text, value)) out.push(`${name}:${f}`);
  }
  return out;
}

/** Canary forms seen by the upstream under a host their secret is not bound to. */
function misdirected(): string[] {
  const out: string[] = [];
  for (const r of [...h.upstream.requests, ...h.plainUpstream.requests, ...h.untrustedUpstream.requests]) {
    const host = String(r.headers.host ?? '').replace(/:\d+$/, '');
    const text = `${r.url}\n${JSON.stringify(r.headers)}\n${r.body.toString('latin1')}`;
    for (const [name, value] of Object.entries(canaries)) {
      if ((BOUND[name] ?? []).includes(host)) continue;
      for (const f of leaksIn(text, value)) out.push(`${name} ${f} at ${host} (${r.url})`);
    }
  }
  return out;
}

const last = () => h.upstream.requests.at(-1);
const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');

describe('multi-site secrets', () => {
  it('placeholder at both header sites: both written, echo scrubbed', async () => {
    const r = await play([`GET /v1/echo-header HTTP/1.1\r\nHost: api.example.test\r\nx-api-key: ${PLACEHOLDER}\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers['x-api-key']).toBe(h.canary);
    expect(last()?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it("another secret's placeholder (bound elsewhere) at a site of both: ambiguous or kept, never its value", async () => {
    const r = await play([`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nx-api-key: ${PLACEHOLDER}\r\nAuthorization: Token ${P_OTHER}\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers.authorization).toBe(`Token ${P_OTHER}`);
    expect(last()?.headers['x-api-key']).toBe(h.canary);
  });

  it('same at the other destination: only OTHER_KEY is written there', async () => {
    const r = await play([`GET /v1/echo HTTP/1.1\r\nHost: other.example.test\r\nx-api-key: ${PLACEHOLDER}\r\nAuthorization: Token ${P_OTHER}\r\nConnection: close\r\n\r\n`], false, 'other.example.test');
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers.authorization).toBe(`Token ${canaries.OTHER_KEY}`);
    expect(last()?.headers['x-api-key']).toBe(PLACEHOLDER);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it('both secrets claim x-api-key (one site each): refused as ambiguous', async () => {
    const before = h.upstream.requests.length;
    const r = await play([`GET /v1/echo HTTP/1.1\r\nHost: other.example.test\r\nx-api-key: ${PLACEHOLDER}${P_OTHER}\r\nConnection: close\r\n\r\n`], false, 'other.example.test');
    expect(r.responses[0]?.status).toBe(400);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('case variants of a site header are one header: two of them are refused', async () => {
    const before = h.upstream.requests.length;
    const r = await play([`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nX-API-KEY: ${PLACEHOLDER}\r\nx-api-key: other\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(400);
    const r2 = await play([`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nx-goog-api-key: ${P_BASIC}\r\nX-Goog-Api-Key: x\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r2.responses[0]?.status).toBe(400);
    const r3 = await play([`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nx-path-key: ${P_PATH}\r\nx-path-key: x\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r3.responses[0]?.status).toBe(400);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('a site header listed in Connection is dropped, never written', async () => {
    const r = await play([`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nx-api-key: ${PLACEHOLDER}\r\nConnection: x-api-key, close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers['x-api-key']).toBeUndefined();
  });

  it('Basic with a username, query and header sites at once: each rendered, every echo scrubbed', async () => {
    const r = await play([`GET /v1/echo-header?key=${P_BASIC}&key=${P_BASIC}&k%65y=x${P_BASIC} HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Basic ${b64(`anyone:${P_BASIC}`)}\r\nx-goog-api-key: ${P_BASIC}\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers.authorization).toBe(`Basic ${b64(`user:${canaries.BASIC_KEY}`)}`);
    expect(last()?.url).toContain(encodeURIComponent(canaries.BASIC_KEY ?? ''));
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
    const r2 = await play([`GET /v1/echo?key=${P_BASIC} HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(leaks(r2.raw.toString('latin1'))).toEqual([]);
  });

  it('path site and a formatted header site: echo of the url and the header scrubbed', async () => {
    const r = await play([`GET /v1/${P_PATH}/echo HTTP/1.1\r\nHost: api.example.test\r\nx-path-key: ${P_PATH}\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers['x-path-key']).toBe(`k=${canaries.PATH_KEY}`);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it('Basic at one secret and Bearer at another in one Authorization: never both, never unbound', async () => {
    const r = await play([`GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER} ${P_BASIC}\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(400);
  });

  it('template sites: the hmac and the sha256 each site renders are scrubbed from the echo', async () => {
    const r = await play([`GET /v1/echo?sig=${P_TPL} HTTP/1.1\r\nHost: api.example.test\r\nx-sig: ${P_TPL}\r\nConnection: close\r\n\r\n`], false, 'api.example.test');
    expect(r.responses[0]?.status).toBe(200);
    const seen = last();
    expect(seen?.headers['x-sig']).toMatch(/^[0-9a-f]{64}$/);
    const text = r.raw.toString('latin1');
    expect(text).not.toContain(String(seen?.headers['x-sig']));
    expect(text).not.toContain(String(seen?.url).split('sig=')[1]);
  });

  it('a template rendering kept by its bound upstream is read back by a later request without the placeholder', async () => {
    const r1 = await play([`GET /v1/anything HTTP/1.1\r\nHost: log.example.test\r\nx-sig: ${P_TPL}\r\nConnection: close\r\n\r\n`], false, 'log.example.test');
    expect(r1.responses[0]?.status, r1.responses[0]?.body.toString()).toBe(204);
    const r2 = await play([`GET /v1/last HTTP/1.1\r\nHost: log.example.test\r\nConnection: close\r\n\r\n`], false, 'log.example.test');
    expect(r2.responses[0]?.status).toBe(200);
    const body = JSON.parse(r2.responses[0]?.body.toString() ?? '{}') as Record<string, string>;
    // FAILS (finding): the hmac TPL's x-sig site rendered went upstream and comes back verbatim. A template's rendered
    // credential is scrubbed only in the request that rendered it (pipeline.ts renderedCredentials), while raw
    // values are scrubbed on every response of a bound destination.
    expect(body['x-sig']).not.toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('https:// absolute-form entry', () => {
  const abs = (url: string, headers: string, method = 'GET') => `${method} ${url} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`;

  it('upper-case host and a trailing dot are one destination with the bound name; echo scrubbed', async () => {
    const r = await play([abs('https://API.EXAMPLE.TEST./v1/echo', `Host: Api.Example.Test.\r\nx-api-key: ${PLACEHOLDER}\r\n`)]);
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers.host).toBe('api.example.test');
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it('Host naming another port or host than the URL: 421, nothing sent', async () => {
    const before = h.upstream.requests.length;
    for (const [url, host] of [
      ['https://api.example.test/v1/echo', 'api.example.test:8443'],
      ['https://api.example.test:443/v1/echo', 'api.example.test:80'],
      ['https://other.example.test/v1/echo', 'api.example.test'],
      [`https://127.0.0.1:${h.upstream.port}/v1/echo`, 'api.example.test'],
    ] as const) {
      const r = await play([abs(url, `Host: ${host}\r\nx-api-key: ${PLACEHOLDER}\r\n`)]);
      expect(r.responses[0]?.status, `${url} ${host}`).toBe(421);
    }
    expect(h.upstream.requests.length).toBe(before);
  });

  it('an IP literal of the upstream (no binding can name it): forwarded unmodified, no secret', async () => {
    const r = await play([abs(`https://127.0.0.1:${h.upstream.port}/v1/echo`, `Host: 127.0.0.1:${h.upstream.port}\r\nx-api-key: ${PLACEHOLDER}\r\nAuthorization: Token ${P_OTHER}\r\n`)]);
    expect([200, 502]).toContain(r.responses[0]?.status);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
    expect(misdirected()).toEqual([]);
  });

  it("keyswap's own listener by every loopback spelling: refused, never a loop", async () => {
    for (const authority of [`127.0.0.1:${h.proxyPort}`, `localhost:${h.proxyPort}`, `[::1]:${h.proxyPort}`, `127.0.0.2:${h.proxyPort}`, `a.localhost:${h.proxyPort}`, `0.0.0.0:${h.proxyPort}`]) {
      const r = await play([abs(`https://${authority}/v1/echo`, `Host: ${authority}\r\nx-api-key: ${PLACEHOLDER}\r\n`)]);
      expect(r.responses[0]?.status, authority).toBeGreaterThanOrEqual(400);
      expect(leaks(r.raw.toString('latin1'))).toEqual([]);
    }
  });

  it('userinfo, bad ports, empty authority and keyswap.invalid', async () => {
    for (const url of ['https://x@api.example.test/v1/echo', 'https://api.example.test:0/v1/echo', 'https://api.example.test:99999/', 'https:///v1/echo', 'https://api.example.test:/v1/echo', 'https://[::ffff:127.0.0.1]/']) {
      const r = await play([abs(url, `Host: api.example.test\r\nx-api-key: ${PLACEHOLDER}\r\n`)]);
      expect(r.responses[0]?.status, url).toBe(400);
    }
    const r = await play([abs('https://keyswap.invalid/healthz', 'Host: keyswap.invalid\r\n')]);
    expect(r.responses[0]?.status).toBe(200);
  });

  it('pipelined: a bound request, then one to another host with the same placeholder, then plain http', async () => {
    const r = await play([
      abs('https://api.example.test/v1/echo', `Host: api.example.test\r\nx-api-key: ${PLACEHOLDER}\r\n`).replace('Connection: close\r\n', ''),
      abs('https://other.example.test/v1/echo', `Host: other.example.test\r\nx-api-key: ${PLACEHOLDER}\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n`).replace('Connection: close\r\n', ''),
      abs('http://plain.example.test/v1/echo', `Host: plain.example.test\r\nx-api-key: ${PLACEHOLDER}\r\n`),
    ], true);
    expect(r.responses.map((x) => x.status)).toEqual([200, 200, 200]);
    expect(r.responses[1]?.body.toString()).toContain(PLACEHOLDER);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
    expect(misdirected()).toEqual([]);
  });

  it('https to a port bound for plain http (api.example.test:80): TLS to it fails, nothing sent in the clear', async () => {
    const before = h.plainUpstream.requests.length;
    const r = await play([abs('https://api.example.test:80/v1/echo', `Host: api.example.test:80\r\nx-api-key: ${PLACEHOLDER}\r\n`)]);
    expect(r.responses[0]?.status).toBe(502);
    expect(h.plainUpstream.requests.length).toBe(before);
  });

  it('a response header and body echo on the absolute entry are scrubbed (every form)', async () => {
    const r = await play([abs('https://api.example.test/v1/echo-forms', `Host: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n`)]);
    expect(r.responses[0]?.status).toBe(200);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it('the upstream answers with a reflected credential in a header name and a Location', async () => {
    // /v1/respond cannot see the secret; keyswap's scrubber is exercised via echo-header instead
    const spec = respondHeader({ status: 302, headers: { location: 'https://evil.example/' } });
    const r = await play([abs('https://api.example.test/v1/respond', `Host: api.example.test\r\nx-respond: ${spec}\r\nx-api-key: ${PLACEHOLDER}\r\n`)]);
    expect(r.responses[0]?.status).toBe(302);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });
});

describe('invariants over every exchange above', () => {
  it('no agent-visible byte, log or audit line holds a canary form; the upstream saw each only where bound', () => {
    for (const b of agentBytes) expect(leaks(b.toString('latin1'))).toEqual([]);
    expect(leaks(h.stdout() + h.stderr() + h.auditText())).toEqual([]);
    expect(misdirected()).toEqual([]);
  });
});
