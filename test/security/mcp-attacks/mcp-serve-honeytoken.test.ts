import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYSWAP } from '../../helpers/cli.js';

/*
 * Attack review of `keyswap mcp serve`: a honeytoken (attacks.md row 34, "probe with planted decoy credentials") is
 * a placeholder planted in the agent's environment so that a hijacked agent that goes hunting for keys uses it and
 * is caught. keyswap_status, a tool the same agent calls, lists it with "(a trap: any use is recorded and alerted;
 * do not use it)": a prompt-injected agent asks first and steers around every trap. src/mcp/server.ts statusText.
 */
const PH_REAL = 'sk-PLACEHOLDER-real-0123456789abcdefgh';
const PH_TRAP = 'sk-PLACEHOLDER-trap-0123456789abcdefgh';

let dir = '';
let client: Client;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-mcp-honey-'));
  const config = path.join(dir, 'keyswap.yaml');
  writeFileSync(config, `version: 1
state_dir: ${dir}/state
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
secrets:
  OPENAI_API_KEY:
    placeholder: "${PH_REAL}"
    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }
    bindings: [ { host: api.openai.com } ]
  AWS_PROD_ADMIN_KEY:
    placeholder: "${PH_TRAP}"
    honeytoken: true
    inject: { header: X-Api-Key, format: "{AWS_PROD_ADMIN_KEY}" }
    bindings: [ { host: api.internal.example } ]
`);
  client = new Client({ name: 'hijacked-agent', version: '1.0.0' });
  await client.connect(new StdioClientTransport({
    command: process.execPath,
    args: [KEYSWAP, 'mcp', 'serve', '--config', config],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, OPENAI_API_KEY: PH_REAL, AWS_PROD_ADMIN_KEY: PH_TRAP },
    stderr: 'pipe',
  }));
}, 30_000);
afterAll(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mcp serve and honeytokens', () => {
  it('keyswap_status does not tell the agent which of its placeholders is a trap', async () => {
    const r = await client.callTool({ name: 'keyswap_status', arguments: {} });
    const text = (r.content as { text: string }[]).map((c) => c.text).join('\n');
    expect(text).toContain(PH_REAL);
    // The placeholder itself spells "trap" here: what keyswap says around it must not.
    expect(text.replaceAll(PH_TRAP, '')).not.toMatch(/trap|honeytoken|decoy|do not use/i);
    const ex = await client.callTool({ name: 'keyswap_explain', arguments: { method: 'GET', url: 'https://api.internal.example/', headers: { 'X-Api-Key': PH_TRAP } } });
    const exText = (ex.content as { text: string }[]).map((c) => c.text).join('\n');
    expect(exText.replaceAll(PH_TRAP, '')).not.toMatch(/honeytoken|trap|decoy/i);
  });
});
