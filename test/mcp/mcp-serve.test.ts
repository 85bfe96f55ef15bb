import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYSWAP } from '../helpers/cli.js';

/*
 * Issue #30, item 3: `keyswap mcp serve`, driven by the official MCP SDK's client over stdio as an agent's MCP
 * client would. Its tools are read-only and answer from the config: the placeholders this agent holds and where
 * each may go, and keyswap's explanation of a request. The real secret is in the server's environment (the env
 * backend's variable) and must appear in no answer.
 */
const PH_GH = 'ghp_PLACEHOLDER_mcp_0123456789abcdefgh';
const PH_OTHER = 'sk-PLACEHOLDER-mcp-other-0123456789ab';
const CANARY = 'real-secret-mcp-0123456789abcdef';

let dir = '';
let client: Client;
let config = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-mcp-'));
  config = path.join(dir, 'keyswap.yaml');
  writeFileSync(config, `version: 1
state_dir: ${dir}/state
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
usage:
  gh-daily: { secrets: [GITHUB_TOKEN], limit: 500, period: day }
secrets:
  GITHUB_TOKEN:
    placeholder: "${PH_GH}"
    inject: { header: Authorization, format: "Bearer {GITHUB_TOKEN}" }
    bindings:
      - { host: api.github.com, methods: [GET, POST], paths: ["/repos/my-org/**"], rate: "60/minute" }
  OTHER_KEY:
    placeholder: "${PH_OTHER}"
    inject: { header: X-Api-Key, format: "{OTHER_KEY}" }
    bindings: [ { host: api.other.example } ]
`);
  client = new Client({ name: 'test-agent', version: '1.0.0' });
  await client.connect(new StdioClientTransport({
    command: process.execPath,
    args: [KEYSWAP, 'mcp', 'serve', '--config', config],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GITHUB_TOKEN: PH_GH, KEYSWAP_SECRET_GITHUB_TOKEN: CANARY },
    stderr: 'pipe',
  }));
}, 30_000);
afterAll(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

const text = (r: Awaited<ReturnType<Client['callTool']>>): string => (r.content as { type: string; text: string }[]).map((c) => c.text).join('\n');

describe('keyswap mcp serve, through the MCP SDK client', () => {
  it('lists two read-only tools and one that asks an operator (nothing destructive)', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['keyswap_explain', 'keyswap_request_access', 'keyswap_status']);
    for (const t of tools) expect(t.annotations).toMatchObject({ readOnlyHint: t.name !== 'keyswap_request_access', destructiveHint: false });
  });

  it('keyswap_status: the placeholders this agent holds (its environment) and where each may go, never a value', async () => {
    const out = text(await client.callTool({ name: 'keyswap_status', arguments: {} }));
    expect(out).toContain(`GITHUB_TOKEN: placeholder ${PH_GH}`);
    expect(out).toContain('https://api.github.com  methods GET POST  paths /repos/my-org/**  (rate 60 per 60 s)');
    expect(out).toContain('quotas: gh-daily 500 per day');
    // Not in this agent's environment: not shown.
    expect(out).not.toContain('OTHER_KEY');
    expect(out).not.toContain(CANARY);
  });

  it('keyswap_explain: the same answer as keyswap explain, placeholders shown by name', async () => {
    const allowed = text(await client.callTool({ name: 'keyswap_explain', arguments: { method: 'GET', url: 'https://api.github.com/repos/my-org/app/issues', headers: { authorization: `Bearer ${PH_GH}` } } }));
    expect(allowed).toContain('GITHUB_TOKEN: injected at header authorization');
    const outside = text(await client.callTool({ name: 'keyswap_explain', arguments: { method: 'DELETE', url: 'https://api.github.com/repos/other-org/app', secret: 'GITHUB_TOKEN' } }));
    expect(outside).toContain('GITHUB_TOKEN: placeholder kept (binding_scope_violation)');
    for (const t of [allowed, outside]) {
      expect(t).not.toContain(PH_GH);
      expect(t).not.toContain(CANARY);
    }
  });

  it('a bad argument is a tool error naming it, and the server keeps serving', async () => {
    const r = await client.callTool({ name: 'keyswap_explain', arguments: { method: 'GET' } });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/url/);
    expect(text(await client.callTool({ name: 'keyswap_status', arguments: {} }))).toContain('GITHUB_TOKEN');
  });
});
