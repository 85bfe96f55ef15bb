import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawTlsVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';

// Red-team (attack3): a binding's path globs are matched against the request-target as sent, where `#` is an
// ordinary character; an upstream that parses the target as a URL (Express's parseurl, WHATWG URL, yarl) cuts the
// path at `#`. The agent names one path to keyswap and another to the API.
const PH = 'sk-PLACEHOLDER-frag-attack3-0123456789';
const CANARY = `scoped-real-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { SCOPED: CANARY },
    secrets: `
  SCOPED:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {SCOPED}" }
    bindings: [{ host: api.example.test, methods: [GET], paths: ["/v1/*/read", "/v2/**/comments"] }]
`,
  });
});
afterAll(async () => {
  await h.close();
});

async function send(target: string): Promise<{ answer: string; url: string | undefined; authorization: string | undefined }> {
  const before = h.upstream.requests.length;
  const t = await rawTlsVia(h, 'api.example.test');
  const answer = await exchange(t, `GET ${target} HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`);
  const seen = h.upstream.requests.length > before ? h.upstream.requests.at(-1) : undefined;
  return { answer, url: seen?.url, authorization: seen?.headers.authorization };
}

describe('binding path globs and #', () => {
  it('control: a path outside the globs gets the placeholder only', async () => {
    const r = await send('/v1/echo');
    expect(r.authorization).toBe(`Bearer ${PH}`);
  });

  it('/v1/echo#/read matches "/v1/*/read", so the real key goes to what the API routes as /v1/echo', async () => {
    const r = await send('/v1/echo#/read');
    expect(r.url).toBe('/v1/echo#/read');
    expect(new URL(r.url ?? '/', 'http://x').pathname).toBe('/v1/echo'); // the upstream's router sees this path
    expect(r.authorization, 'the real key was injected for an out-of-scope path').toBe(`Bearer ${PH}`);
  });

  it('/v2/admin/delete#/comments matches "/v2/**/comments"', async () => {
    const r = await send('/v2/admin/delete#/comments');
    expect(new URL(r.url ?? '/', 'http://x').pathname).toBe('/v2/admin/delete');
    expect(r.authorization, 'the real key was injected for an out-of-scope path').toBe(`Bearer ${PH}`);
  });

  it('no canary in any answer, log or audit line', async () => {
    const r = await send('/v1/echo#/read');
    expect(r.answer.includes(CANARY)).toBe(false);
    for (const t of [h.stdout(), h.stderr(), h.auditText()]) expect(t.includes(CANARY)).toBe(false);
  });
});
