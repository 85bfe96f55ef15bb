import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totp } from '../../src/inject/template-eval.js';
import { leaksIn as formsIn } from '../helpers/secret-forms.js';
import { curlVia, type ClientResult } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { playConnection, type AgentResult } from '../helpers/raw-agent.js';

// Red-team (second pass, #19 deltas): a body site beside header sites (inject list and agent-vault-proxy's
// type: multi), honeytokens with a body site, and the template renderings the scrubber now derives from cached
// values. Every value is a canary; every agent-visible byte is scanned for every echo form of every canary and of
// every template rendering.
const P_MB = 'mb-PLACEHOLDER-MULTIBODY-0123456789abcdef';
const P_HT = 'ht-PLACEHOLDER-HONEYBODY-0123456789abcdef';
const P_TB = 'tb-PLACEHOLDER-TPLBASIC-0123456789abcdef';
const P_OTP = 'ot-PLACEHOLDER-TOTP-0123456789abcdef';

const canaries: Record<string, string> = {
  MB: `mb-${randomBytes(10).toString('hex')}`,
  HT: `ht-${randomBytes(10).toString('hex')}`,
  TB_U: `tbuser-${randomBytes(6).toString('hex')}`,
  TB_P: `tbpass-${randomBytes(10).toString('hex')}`,
  // base32 seed: the canary is the seed; what matters is the code it renders.
  SEED: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
};
const basicOf = (): string => Buffer.from(`${canaries.TB_U}:${canaries.TB_P}`).toString('base64');

let h: Harness;
const agentBytes: string[] = [];
beforeAll(async () => {
  h = await startHarness({
    secretValues: canaries,
    secrets: `
  MB:
    placeholder: "${P_MB}"
    inject:
      type: multi
      injectors:
        - { header: x-mb, format: "{MB}" }
        - { type: body, content_type: application/json }
    bindings:
      - { host: api.example.test, methods: [POST], paths: ["/v1/**"] }
  HT:
    placeholder: "${P_HT}"
    honeytoken: true
    inject:
      - { header: x-ht, format: "{HT}" }
      - { type: body }
    bindings:
      - { host: api.example.test }
  TB:
    placeholder: "${P_TB}"
    compose: [TB_U, TB_P]
    inject:
      - { header: Authorization, template: "Basic {{ (TB_U + ':' + TB_P) | b64encode }}" }
      - { type: body, template: "{{ (TB_U + ':' + TB_P) | b64encode }}" }
    bindings:
      - { host: api.example.test }
  OTP:
    placeholder: "${P_OTP}"
    compose: [SEED]
    inject:
      - { header: x-otp, template: "{{ totp(SEED) }}" }
    bindings:
      - { host: api.example.test }
`,
  });
}, 30_000);
afterAll(async () => {
  // K1 over the whole run: keyswap's own output holds no canary form.
  const out = h.stdout() + h.stderr() + h.auditText();
  await h.close();
  expect(leaksIn(out, false)).toEqual([]);
});

/** Every echo form of every canary and of every template rendering (TB's Basic string; OTP codes near now) in `text`. */
function leaksIn(text: string, withOtp = true): string[] {
  const out: string[] = [];
  const values: Record<string, string> = { ...canaries, TB_BASIC: basicOf() };
  delete values.SEED; // a public test seed; what must not leak is the code (below)
  for (const [name, v] of Object.entries(values)) for (const f of formsIn(text, v)) out.push(`${name}:${f}`);
  if (withOtp) {
    const now = Date.now();
    for (const t of [now - 30_000, now, now + 30_000]) {
      const code = totp(canaries.SEED as string, t);
      if (text.includes(`"${code}"`) || text.includes(`: ${code}`)) out.push(`OTP:${code}`);
    }
  }
  return out;
}

function seen(r: ClientResult): string {
  const s = JSON.stringify(r.headers) + '\n' + r.body;
  agentBytes.push(s);
  return s;
}

async function raw(requests: string[], pipelined = false): Promise<AgentResult> {
  const r = await playConnection({
    proxyPort: h.proxyPort,
    connect: { host: 'api.example.test', port: 443, proxyAuth: 'Basic eDp4', caPem: h.caPem },
    requests: requests.map((s) => ({ bytes: Buffer.from(s, 'latin1'), method: s.split(' ')[0] ?? 'GET' })),
    pipelined,
    deadlineMs: 10_000,
  });
  agentBytes.push(r.raw.toString('latin1'));
  return r;
}

const last = () => h.upstream.requests.at(-1);

describe('honeytoken with a body site (inject list: header + body)', () => {
  it('a honeytoken injected into a body and echoed by its bound upstream does not reach the agent', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo-stream', {
      method: 'POST', headers: ['Content-Type: application/json'], data: `{"token":"${P_HT}"}`,
    });
    expect(r.status, r.stderr).toBe(200);
    // /v1/echo-stream keeps no body; its length says the value was written (honeytokens are injected).
    expect(last()?.bodyBytes).toBe(`{"token":"${canaries.HT}"}`.length);
    expect(leaksIn(seen(r))).toEqual([]);
  });

  it('a honeytoken value kept by its bound upstream is not read back by a later request', async () => {
    const put = await curlVia(h, 'https://api.example.test/v1/store', { method: 'POST', headers: ['x-ht: ' + P_HT], data: `{"t":"${P_HT}"}` });
    expect(put.status, put.stderr).toBe(204);
    expect(last()?.body.toString()).toContain(canaries.HT);
    const get = await curlVia(h, 'https://api.example.test/v1/stored');
    expect(get.status, get.stderr).toBe(200);
    expect(leaksIn(seen(get))).toEqual([]);
  });
});

describe('secret with header and body sites (type: multi)', () => {
  it('placeholder in the header and the JSON body at once: both written, every echo scrubbed', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/echo-stream', {
      method: 'POST', headers: ['Content-Type: application/json; charset=utf-8', `x-mb: ${P_MB}`], data: `{"a":"${P_MB}","b":"${P_MB}"}`,
    });
    expect(r.status, r.stderr).toBe(200);
    expect(last()?.headers['x-mb']).toBe(canaries.MB);
    expect(last()?.bodyBytes).toBe(`{"a":"${canaries.MB}","b":"${canaries.MB}"}`.length);
    expect(leaksIn(seen(r))).toEqual([]);
    const echoHeaders = await curlVia(h, 'https://api.example.test/v1/echo-split', { method: 'POST', headers: ['Content-Type: application/json', `x-mb: ${P_MB}`], data: `{"a":"${P_MB}"}` });
    expect(echoHeaders.body).toContain(P_MB);
    expect(leaksIn(seen(echoHeaders))).toEqual([]);
  });

  it('a body of another content type travels verbatim (the header site is still written)', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: ['Content-Type: text/plain', `x-mb: ${P_MB}`], data: `k=${P_MB}` });
    expect(r.status, r.stderr).toBe(200);
    expect(last()?.body.toString()).toBe(`k=${P_MB}`);
    expect(last()?.headers['x-mb']).toBe(canaries.MB);
    expect(leaksIn(seen(r))).toEqual([]);
  });

  it('out of the binding scope (path, method): neither the header nor the body is written', async () => {
    for (const [method, url] of [['POST', 'https://api.example.test/other'], ['PUT', 'https://api.example.test/v1/upload']] as const) {
      const before = h.upstream.requests.length;
      const r = await curlVia(h, url, { method, headers: ['Content-Type: application/json', `x-mb: ${P_MB}`], data: `{"a":"${P_MB}"}` });
      expect(leaksIn(seen(r))).toEqual([]);
      for (const q of h.upstream.requests.slice(before)) {
        expect(q.body.toString()).not.toContain(canaries.MB);
        expect(JSON.stringify(q.headers)).not.toContain(canaries.MB);
      }
    }
  });

  it('a method override to a method outside the binding keeps the body verbatim', async () => {
    const r = await curlVia(h, 'https://api.example.test/v1/upload', { method: 'POST', headers: ['Content-Type: application/json', 'X-HTTP-Method-Override: DELETE'], data: `{"a":"${P_MB}"}` });
    expect(leaksIn(seen(r))).toEqual([]);
    expect(last()?.body.toString()).not.toContain(canaries.MB);
  });

  it('a chunked body splitting the placeholder across chunks is written once, and its echo is scrubbed', async () => {
    const body = `{"a":"${P_MB}"}`;
    const cut1 = 9;
    const cut2 = 20;
    const chunks = [body.slice(0, cut1), body.slice(cut1, cut2), body.slice(cut2)];
    const framed = chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';
    const r = await raw([`POST /v1/echo-stream HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${framed}`]);
    expect(r.error).toBeNull();
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.bodyBytes).toBe(`{"a":"${canaries.MB}"}`.length);
    expect(leaksIn(r.raw.toString('latin1'))).toEqual([]);
  });

  it('two Content-Type headers (application/json and text/plain) with a body placeholder: refused, nothing written', async () => {
    const before = h.upstream.requests.length;
    const b = `{"a":"${P_MB}"}`;
    const r = await raw([`POST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: ${b.length}\r\n\r\n${b}`]);
    expect(r.responses[0]?.status).toBe(400);
    expect(h.upstream.requests.length).toBe(before);
    expect(leaksIn(r.raw.toString('latin1'))).toEqual([]);
  });

  it('pipelined: a JSON body is written, the text/plain one behind it is not', async () => {
    const b1 = `{"a":"${P_MB}"}`;
    const b2 = `x=${P_MB}`;
    const r = await raw([
      `POST /v1/upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: ${b1.length}\r\n\r\n${b1}`,
      `POST /v1/echo-stream HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: text/plain\r\nContent-Length: ${b2.length}\r\n\r\n${b2}`,
    ], true);
    expect(r.responses.map((x) => x.status)).toEqual([200, 200]);
    expect(h.upstream.requests.at(-2)?.body.toString()).toBe(`{"a":"${canaries.MB}"}`);
    expect(last()?.bodyBytes).toBe(b2.length);
    expect(r.responses[1]?.body.toString()).toBe(b2);
    expect(leaksIn(r.raw.toString('latin1'))).toEqual([]);
  });
});

describe('template renderings from cached values', () => {
  it('a Basic template rendered into a body, stored upstream, is read back scrubbed (also 3 bytes at a time)', async () => {
    const put = await curlVia(h, 'https://api.example.test/v1/store', { method: 'POST', headers: ['Content-Type: application/json'], data: `{"basic":"${P_TB}"}` });
    expect(put.status, put.stderr).toBe(204);
    expect(last()?.body.toString()).toBe(`{"basic":"${basicOf()}"}`);
    const get = await curlVia(h, 'https://api.example.test/v1/stored');
    expect(leaksIn(seen(get))).toEqual([]);
    const split = await curlVia(h, 'https://api.example.test/v1/echo-split', { headers: [`Authorization: ${P_TB}`, `x-ht: nothing`] });
    expect(leaksIn(seen(split))).toEqual([]);
    // The rendering echoed in a response header.
    const hdr = await curlVia(h, 'https://api.example.test/v1/echo-header', { headers: [`Authorization: ${P_TB}`] });
    expect(last()?.headers.authorization).toBe(`Basic ${basicOf()}`);
    expect(leaksIn(seen(hdr))).toEqual([]);
  });

});

describe('whole run', () => {
  it('no canary reached a host its secret is not bound to (only api.example.test is bound)', () => {
    for (const q of [...h.plainUpstream.requests, ...h.untrustedUpstream.requests]) {
      expect(leaksIn(`${q.url}${JSON.stringify(q.headers)}${q.body.toString('latin1')}`)).toEqual([]);
    }
  });
});

describe('clients: a body site is written only for a client allowed the secret', () => {
  const TA = 'ks_token-allowed-0123456789abcdef';
  const TD = 'ks_token-denied-0123456789abcdef';
  const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
  let hc: Harness;
  beforeAll(async () => {
    hc = await startHarness({
      secretValues: { MB: canaries.MB as string, HT: canaries.HT as string, DUMMY: 'dummy-value-0123456789' },
      top: `clients:\n  allowed: { token_sha256: "${sha(TA)}", secrets: [MB] }\n  denied: { token_sha256: "${sha(TD)}", secrets: [DUMMY] }`,
      secrets: `
  DUMMY:
    placeholder: "dm-PLACEHOLDER-DUMMY-0123456789abcdef"
    inject: { header: x-dummy, format: "{DUMMY}" }
    bindings:
      - { host: other.example.test }
  MB:
    placeholder: "${P_MB}"
    inject:
      type: multi
      injectors:
        - { header: x-mb, format: "{MB}" }
        - { type: body }
    bindings:
      - { host: api.example.test }
  HT:
    placeholder: "${P_HT}"
    honeytoken: true
    inject:
      - { header: x-ht, format: "{HT}" }
      - { type: body }
    bindings:
      - { host: api.example.test }
`,
    });
  }, 30_000);
  afterAll(async () => { await hc.close(); });
  const proxy = (name: string, token: string): string => `http://${name}:${token}@127.0.0.1:${hc.proxyPort}`;

  it('the denied client: body and header travel verbatim; the allowed client: both written, echo scrubbed', async () => {
    const d = await curlVia(hc, 'https://api.example.test/v1/upload', { proxy: proxy('denied', TD), method: 'POST', headers: [`x-mb: ${P_MB}`], data: `v=${P_MB}` });
    expect(d.status, d.stderr).toBe(200);
    expect(hc.upstream.requests.at(-1)?.body.toString()).toBe(`v=${P_MB}`);
    expect(hc.upstream.requests.at(-1)?.headers['x-mb']).toBe(P_MB);
    const a = await curlVia(hc, 'https://api.example.test/v1/store', { proxy: proxy('allowed', TA), method: 'POST', headers: [`x-mb: ${P_MB}`], data: `v=${P_MB}` });
    expect(a.status, a.stderr).toBe(204);
    expect(hc.upstream.requests.at(-1)?.body.toString()).toBe(`v=${canaries.MB}`);
    // The denied client reads back what the allowed one stored: scrubbed for it too.
    const back = await curlVia(hc, 'https://api.example.test/v1/stored', { proxy: proxy('denied', TD) });
    expect(leaksIn(seen(back))).toEqual([]);
  });

  it('a honeytoken body placeholder from a client not allowed it is only watched, never written', async () => {
    // Neither client lists HT: its body placeholder is watched (honeytoken_triggered, denied), never written.
    const d = await curlVia(hc, 'https://api.example.test/v1/upload', { proxy: proxy('denied', TD), method: 'POST', data: `v=${P_HT}` });
    expect(d.status, d.stderr).toBe(200);
    expect(hc.upstream.requests.at(-1)?.body.toString()).toBe(`v=${P_HT}`);
    expect(leaksIn(seen(d))).toEqual([]);
  });
});

describe('binding rate limits and body sites', () => {
  const P_RB = 'rb-PLACEHOLDER-RATEBODY-0123456789abcdef';
  const RB = `rb-${randomBytes(10).toString('hex')}`;
  let hr: Harness;
  beforeAll(async () => {
    hr = await startHarness({
      secretValues: { RB },
      secrets: `
  RB:
    placeholder: "${P_RB}"
    inject:
      - { header: x-rb, format: "{RB}" }
      - { type: body }
    bindings:
      - { host: api.example.test, rate: "2/hour" }
`,
    });
  }, 30_000);
  afterAll(async () => { await hr.close(); });

  it('the rate: limit of a binding holds for the body site as for the header site', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await curlVia(hr, 'https://api.example.test/v1/upload', { method: 'POST', headers: [`x-rb: ${P_RB}`], data: 'x' })).status);
    expect(statuses).toEqual([200, 200, 429]); // the header site is limited
    const before = hr.upstream.requests.length;
    for (let i = 0; i < 5; i++) await curlVia(hr, 'https://api.example.test/v1/upload', { method: 'POST', data: `v=${P_RB}` });
    const written = hr.upstream.requests.slice(before).filter((q) => q.body.toString().includes(RB)).length;
    expect(written).toBe(0); // past the limit: nothing more is written anywhere
  });
});
