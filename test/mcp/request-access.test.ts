import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askAccess } from '../../src/mcp/index.js';
import { KEYSWAP } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { idOf, operatorCli, sha } from '../helpers/operator-cli.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

/*
 * Issue #30, item 3: `keyswap_request_access`. The agent's MCP client calls it on `keyswap mcp serve`, which asks
 * the running keyswap through the agent's own proxy URL, so the request is the agent's client's: it shows in
 * `keyswap approvals` (and the console) and raises an alert; `keyswap approve ar-…` writes the binding, reloads,
 * and the agent's next request to that host gets its secret; `deny` declines. Bounded, audited, never a value.
 */
const TOKEN_A = 'ks_agent-a-token-0123456789abcdef';
const PH_OTHER = 'sk-PLACEHOLDER-access-other-0123456789';

let h: Harness;
let client: Client;
const { configPath, op, proxyAs: proxyAsClient } = operatorCli(() => h);
const proxyAs = (): string => proxyAsClient('agent-a', TOKEN_A);
const text = (r: Awaited<ReturnType<Client['callTool']>>): string => (r.content as { text: string }[]).map((c) => c.text).join('\n');

beforeAll(async () => {
  h = await startHarness({
    secretValues: { OTHER_KEY: 'other-real-value-0123456789' },
    top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [TEST_API_KEY] }\n  agent-b: { token_sha256: "${sha('ks_agent-b-token-0123456789abcdef')}", secrets: [OTHER_KEY] }\n`,
    secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET], paths: ["/v1/**"] }
  OTHER_KEY:
    placeholder: "${PH_OTHER}"
    inject: { header: X-Other, format: "{OTHER_KEY}" }
    bindings: [ { host: api.example.test } ]
`,
  });
  client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(new StdioClientTransport({
    command: process.execPath,
    args: [KEYSWAP, 'mcp', 'serve', '--config', configPath()],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: h.dir, TEST_API_KEY: PLACEHOLDER, HTTPS_PROXY: proxyAs(), HTTP_PROXY: proxyAs() },
    stderr: 'pipe',
  }));
}, 60_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

const ask = async (args: Record<string, unknown>): Promise<{ isError: boolean; text: string }> => {
  const r = await client.callTool({ name: 'keyswap_request_access', arguments: args });
  return { isError: r.isError === true, text: text(r) };
};

describe('keyswap_request_access', () => {
  it('the agent asks for a binding; the operator sees who asked and why, accepts it, and the agent\'s next such request carries the secret', async () => {
    const post = (): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/echo', { proxy: proxyAs(), method: 'POST', data: '{}', headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    // The binding allows GET only: a POST keeps its placeholder.
    expect((await post()).body).toContain(PLACEHOLDER);

    const asked = await ask({ secret: PLACEHOLDER, host: 'api.example.test', methods: ['post'], paths: ['/v1/**'], reason: 'the task files issues\u001b[2J\nrm -rf /' });
    expect(asked.isError, asked.text).toBe(false);
    const id = idOf(asked.text);
    expect(id).not.toBe('');
    // Asking the same again is the same request.
    expect(idOf((await ask({ secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['POST'], paths: ['/v1/**'], reason: 'again' })).text)).toBe(id);

    const listed = await op('approvals');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${id}  agent-a  TEST_API_KEY → api.example.test  methods POST  paths /v1/**`);
    // The agent's words, without what could drive the operator's terminal or fake a line of the listing.
    expect(listed.stdout).toContain("reason (the agent's words): the task files issues [2J rm -rf /");
    expect(listed.stdout).not.toContain('\u001b');
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'access_request' && r.access_id === id && r.step === 'requested' && r.client === 'agent-a' && r.by === 'agent'))).toBe(true);
    expect(h.auditText()).not.toContain('files issues');

    const accepted = await op('approve', id);
    expect(accepted.code, accepted.stdout + accepted.stderr).toBe(0);
    expect(accepted.stdout).toContain('reload applied');
    expect(readFileSync(configPath(), 'utf8')).toContain('- { host: api.example.test, methods: [ POST ], paths: [ /v1/** ] }');
    expect(h.auditRecords().some((r) => r.type === 'access_request' && r.access_id === id && r.step === 'accepted' && r.by === 'cli')).toBe(true);

    expect((await post()).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect((await op('approvals')).stdout).toContain('no request waits for approval');
  });

  it('a host keyswap\'s CA does not cover is not written: the operator is told to rotate the CA first, and the request stays pending', async () => {
    const id = idOf((await ask({ secret: PLACEHOLDER, host: 'other.example.test', reason: 'a mirror' })).text);
    const config = readFileSync(configPath(), 'utf8');
    const refused = await op('approve', id);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('other.example.test, which keyswap\'s CA does not cover');
    expect(refused.stderr).toContain('keyswap ca rotate');
    expect(readFileSync(configPath(), 'utf8')).toBe(config);
    expect((await op('approvals')).stdout).toContain(id);
    expect((await op('deny', id)).code).toBe(0);
  });

  it('declined requests change nothing; the agent may ask only for secrets its client holds, and only as a client', async () => {
    const asked = await ask({ secret: PLACEHOLDER, host: 'third.example.test', reason: 'curious' });
    const id = idOf(asked.text);
    const config = readFileSync(configPath(), 'utf8');
    const denied = await op('deny', id);
    expect(denied.code, denied.stderr).toBe(0);
    expect(readFileSync(configPath(), 'utf8')).toBe(config);
    expect(h.auditRecords().some((r) => r.type === 'access_request' && r.access_id === id && r.step === 'declined')).toBe(true);
    expect((await op('approve', id)).code).not.toBe(0);

    const notHeld = await ask({ secret: PH_OTHER, host: 'other.example.test', reason: 'I want it' });
    expect(notHeld.isError).toBe(true);
    expect(notHeld.text).toMatch(/404.*no secret of that name or placeholder that this agent holds/);
    const anonymous = await askAccess(`http://127.0.0.1:${h.proxyPort}`, { secret: 'TEST_API_KEY', host: 'x.example.test', reason: 'r' });
    expect(anonymous).toMatchObject({ ok: false });
    expect(anonymous.text).toContain('407');
    const placeholderPath = await ask({ secret: 'TEST_API_KEY', host: 'x.example.test', paths: [`/v1/${PLACEHOLDER}`], reason: 'r' });
    expect(placeholderPath.isError).toBe(true);
    expect(placeholderPath.text).toContain('a path glob holding a placeholder');
    const bad = await ask({ secret: 'TEST_API_KEY', host: 'https://x.example.test/', reason: 'r' });
    expect(bad.isError).toBe(true);
    expect(bad.text).toContain('host: a lower-case DNS name');
  });

  it('is bounded per client: past 8 pending, 429 until the operator answers', async () => {
    const answers = [];
    for (let i = 0; i < 9; i++) answers.push(await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: `h${i}.example.test`, reason: 'many' }));
    expect(answers.slice(0, 8).every((a) => a.ok)).toBe(true);
    expect(answers[8]?.ok).toBe(false);
    expect(answers[8]?.text).toContain('429');
    for (const a of answers.slice(0, 8)) expect((await op('deny', idOf(a.text))).code).toBe(0);
    expect((await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'h9.example.test', reason: 'room again' })).ok).toBe(true);
  });

  it('a revoked client\'s pending requests are declined with it: none can be accepted afterwards', async () => {
    const asked = await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['PUT'], reason: 'before revocation' });
    const id = idOf(asked.text);
    expect((await op('approvals')).stdout).toContain(id);
    const revoked = await op('client', 'revoke', 'agent-a');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await op('approvals')).stdout).not.toContain(id);
    expect((await op('approve', id)).code).not.toBe(0);
    expect(h.auditRecords().some((r) => r.type === 'access_request' && r.access_id === id && r.step === 'declined')).toBe(true);
  });

  it('never shows a secret', () => {
    expect(findCanary(h)).toEqual([]);
  });
});
