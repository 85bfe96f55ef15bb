import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askAccess } from '../../../src/mcp/index.js';
import { curlVia } from '../../helpers/clients.js';
import { idOf, operatorCli, sha } from '../../helpers/operator-cli.js';
import { findCanary, PLACEHOLDER, startHarness, type Harness } from '../../helpers/harness.js';

/*
 * Attack: the agent's reason is made printable, but its path globs are shown to the operator raw. A glob may hold
 * any character but '?', '#' and whitespace: backspaces, ESC sequences, bidi overrides. So what `keyswap approvals`
 * (a terminal) or the console (a browser applies bidi) shows is not what `keyswap approve` writes.
 */
const TOKEN_A = 'ks_agent-a-token-0123456789abcdef';

let h: Harness;
const { configPath, op, proxyAs: proxyAsClient } = operatorCli(() => h);
const proxyAs = (): string => proxyAsClient('agent-a', TOKEN_A);

/** What a terminal shows for one line: printable characters overwrite, BS steps back, CR returns, ESC[..K erases. */
function render(line: string): string {
  const cells: string[] = [];
  let x = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === '\b') x = Math.max(0, x - 1);
    else if (c === '\r') x = 0;
    else if (c === '\u001b') {
      const m = /^\u001b\[([0-9;]*)([A-Za-z])/.exec(line.slice(i));
      if (m !== null) {
        if (m[2] === 'K') cells.length = m[1] === '1' || m[1] === '2' ? cells.length : x;
        i += m[0].length - 1;
      }
    } else if (c >= ' ') cells[x++] = c;
  }
  return cells.map((c) => c ?? ' ').join('');
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

describe('access request path globs as the operator sees them', () => {
  it('backspaces in a path glob cannot hide "/**" in keyswap approvals: what is shown is what approve writes', async () => {
    // Shown in a terminal: "paths /v1/docs/*"; written: ["/**", "/\b\b\b\b\b/v1/docs/*"], i.e. every path.
    const asked = await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['GET'], paths: ['/**', '/\b\b\b\b\b/v1/docs/*'], reason: 'read the docs pages' });
    if (!asked.ok) {
      expect(asked.text).toContain('(400)');
      return;
    }
    const id = idOf(asked.text);
    const listed = await op('approvals');
    expect(listed.code, listed.stderr).toBe(0);
    const line = listed.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
    // The operator sees a binding for /v1/docs/* only...
    expect(render(line)).toContain('paths /v1/docs/*');
    // ...approves it...
    const approved = await op('approve', id);
    expect(approved.code, approved.stderr).toBe(0);
    // ...and the agent now gets the secret on any path of the host.
    const r = await curlVia(h, 'https://api.example.test/admin/delete-everything', { proxy: proxyAs(), headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(r.status).toBe(200);
    const injected = h.upstream.requests.at(-1)?.headers.authorization === `Bearer ${h.canary}`;
    // The listing must not be able to hide a glob: every path written is visible in what the terminal shows.
    expect({ visible: render(line), injectedOnAdminPath: injected }).toEqual({ visible: expect.stringContaining('/**') as unknown, injectedOnAdminPath: injected });
    expect(listed.stdout).not.toMatch(/[\u0000-\u0008\u000e-\u001f\u007f-\u009f]/);
  });

  it('ESC sequences in a path glob never reach the operator\'s terminal', async () => {
    const asked = await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['PUT'], paths: ['/v1/x\u001b]0;pwned\u0007\u001b[2K\u001b[1A'], reason: 'r' });
    if (!asked.ok) {
      expect(asked.text).toContain('(400)');
      return;
    }
    try {
      const listed = await op('approvals');
      expect(listed.stdout).not.toContain('\u001b');
      expect(listed.stdout).not.toContain('\u0007');
    } finally {
      await op('deny', idOf(asked.text));
    }
  });

  it('bidi overrides in a path glob cannot make "/**" read as a narrow path (console and bidi terminals)', async () => {
    // In a browser the console's cell "… · /v1/public/\u202e /**" renders as "/v1/public/**/ ": one narrow-looking path.
    const asked = await askAccess(proxyAs(), { secret: 'TEST_API_KEY', host: 'api.example.test', methods: ['DELETE'], paths: ['/v1/public/\u202e', '/**'], reason: 'r' });
    if (!asked.ok) {
      expect(asked.text).toContain('(400)');
      return;
    }
    try {
      const listed = await op('approvals');
      expect(listed.stdout).not.toMatch(/[\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069]/);
    } finally {
      await op('deny', idOf(asked.text));
    }
  });

  it('never shows a secret', () => {
    expect(findCanary(h)).toEqual([]);
    expect(readFileSync(configPath(), 'utf8')).not.toContain(h.canary);
  });
});
