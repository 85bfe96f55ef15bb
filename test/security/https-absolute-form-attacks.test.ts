import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaksIn } from '../helpers/secret-forms.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { playConnection, type AgentResult } from '../helpers/raw-agent.js';

// Red-team: the https:// absolute-form entry under `clients:` and `unmatched_destination_policy: deny`.
const P_OTHER = 'ok-PLACEHOLDER-OTHER-0123456789abcdef';
const OTHER = `other-${randomBytes(10).toString('hex')}`;
const TOKEN_A = 'ks_token-for-agent-a-0123456789';
const TOKEN_B = 'ks_token-for-agent-b-0123456789';
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const auth = (name: string, token: string) => `Proxy-Authorization: Basic ${Buffer.from(`${name}:${token}`).toString('base64')}\r\n`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secretValues: { OTHER_KEY: OTHER },
    top: `unmatched_destination_policy: deny
clients:
  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [TEST_API_KEY] }
  agent-b: { token_sha256: "${sha(TOKEN_B)}", secrets: [OTHER_KEY] }`,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject:
      - { header: x-api-key, format: "{TEST_API_KEY}" }
      - { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
  OTHER_KEY:
    placeholder: "${P_OTHER}"
    inject:
      - { header: Authorization, format: "Token {OTHER_KEY}" }
      - { type: query, param: key }
    bindings:
      - { host: other.example.test }
      - { host: api.example.test, paths: ["/v1/other/**"] }
`,
  });
});
afterAll(async () => {
  await h.close();
});

const agent: Buffer[] = [];
async function play(requests: string[], pipelined = false): Promise<AgentResult> {
  const r = await playConnection({ proxyPort: h.proxyPort, connect: null, requests: requests.map((s) => ({ bytes: Buffer.from(s, 'latin1'), method: s.split(' ')[0] ?? 'GET' })), pipelined, deadlineMs: 10_000 });
  agent.push(r.raw);
  return r;
}
const req = (url: string, headers: string, close = true) => `GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n${headers}${close ? 'Connection: close\r\n' : ''}\r\n`;
const leaks = (t: string) => [h.canary, OTHER].flatMap((v) => leaksIn(t, v));
const last = () => h.upstream.requests.at(-1);

describe('https:// absolute-form with clients: and deny', () => {
  it('no Proxy-Authorization: 407, nothing sent', async () => {
    const before = h.upstream.requests.length;
    const r = await play([req('https://api.example.test/v1/echo', `x-api-key: ${PLACEHOLDER}\r\n`)]);
    expect(r.responses[0]?.status).toBe(407);
    expect(h.upstream.requests.length).toBe(before);
  });

  it("agent-a gets its secret; Proxy-Authorization never reaches the upstream; agent-b's placeholder is kept", async () => {
    const r = await play([req('https://api.example.test/v1/echo', `${auth('agent-a', TOKEN_A)}x-api-key: ${PLACEHOLDER}\r\n`)]);
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.headers['x-api-key']).toBe(h.canary);
    expect(last()?.headers['proxy-authorization']).toBeUndefined();
    const r2 = await play([req('https://api.example.test/v1/echo', `${auth('agent-b', TOKEN_B)}x-api-key: ${PLACEHOLDER}\r\n`)]);
    expect(r2.responses[0]?.status).toBe(200);
    expect(last()?.headers['x-api-key']).toBe(PLACEHOLDER);
  });

  it('pipelined identities on one plaintext connection: each request acts as its own, a bad token sends nothing', async () => {
    const before = h.upstream.requests.length;
    const r = await play([
      req('https://api.example.test/v1/echo', `${auth('agent-a', TOKEN_A)}Authorization: Bearer ${PLACEHOLDER}\r\n`, false),
      req('https://api.example.test/v1/echo', `${auth('agent-b', TOKEN_B)}Authorization: Bearer ${PLACEHOLDER}\r\n`, false),
      req('https://api.example.test/v1/echo', `${auth('agent-a', 'wrong')}Authorization: Bearer ${PLACEHOLDER}\r\n`, true),
    ], true);
    expect(r.responses.map((x) => x.status)).toEqual([200, 200, 407]);
    const seen = h.upstream.requests.slice(before);
    expect(seen.map((s) => s.headers.authorization)).toEqual([`Bearer ${h.canary}`, `Bearer ${PLACEHOLDER}`]);
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it('agent-b with its own placeholder at a path of api.example.test it is bound to', async () => {
    const r = await play([req(`https://api.example.test/v1/other/echo?key=${P_OTHER}`, `${auth('agent-b', TOKEN_B)}`)]);
    expect(r.responses[0]?.status).toBe(200);
    expect(last()?.url).toContain(encodeURIComponent(OTHER));
    expect(leaks(r.raw.toString('latin1'))).toEqual([]);
  });

  it('unbound destinations are refused (403): a name, an IP literal, a bound name on another port', async () => {
    const before = h.upstream.requests.length;
    for (const url of ['https://unbound.example.test/v1/echo', `https://127.0.0.1:${h.upstream.port}/v1/echo`, 'https://api.example.test:8443/v1/echo']) {
      const r = await play([req(url, `${auth('agent-a', TOKEN_A)}x-api-key: ${PLACEHOLDER}\r\n`)]);
      expect(r.responses[0]?.status, url).toBe(403);
    }
    expect(h.upstream.requests.length).toBe(before);
  });

  it('nothing the agents received holds a secret form', () => {
    for (const b of agent) expect(leaks(b.toString('latin1'))).toEqual([]);
    expect(leaks(h.stdout() + h.stderr() + h.auditText())).toEqual([]);
  });
});
