import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../../helpers/cli.js';

/*
 * Attack review of `keyswap mcp install --dry-run` ("the diff, every credential masked"). The mask is a plain
 * split on the decoded value (src/cli/mcp-command.ts, `masked`), applied to a unified diff of the raw text:
 *  - a value spelt with a JSON escape ("\u0067hp_…", "ghp_…\/…") is decoded for the store but never found in the
 *    text, so the '-' line prints it;
 *  - a credential keyswap recognised but left in place (no preset, no --host) sits in the diff's context lines,
 *    three lines around the rewritten command/args, unmasked.
 */
const BODY = `${'Qw3Er5Ty7U'.repeat(3)}leak42`;
const GH = `ghp_${BODY}`;
const INTERNAL = `it-${'s3cr3tVALUE'.repeat(3)}`;

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function world(): { dir: string; config: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-mcp-dry-'));
  dirs.push(dir);
  const r = cli(['init', '--config', path.join(dir, 'keyswap.yaml')], { cwd: dir, env: { HOME: dir } });
  expect(r.status, r.stderr).toBe(0);
  return { dir, config: path.join(dir, 'keyswap.yaml') };
}

describe('mcp install --dry-run masking', () => {
  it('a credential written with a JSON unicode escape is masked in the printed diff', () => {
    const w = world();
    const file = path.join(w.dir, 'mcp.json');
    const text = `{\n  "mcpServers": {\n    "github": {\n      "command": "npx",\n      "args": ["-y", "@modelcontextprotocol/server-github"],\n      "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "\\u0067hp_${BODY}" }\n    }\n  }\n}\n`;
    writeFileSync(file, text);
    const dry = cli(['mcp', 'install', '--file', file, '--config', w.config, '--dry-run'], { cwd: w.dir, env: { HOME: w.dir } });
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would move github: env GITHUB_PERSONAL_ACCESS_TOKEN');
    expect(dry.stdout + dry.stderr).not.toContain(BODY);
    // and the real run stores the decoded value (so the escape is only a spelling)
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('a credential keyswap names as one but leaves in place is not printed in the diff\'s context', () => {
    const w = world();
    const file = path.join(w.dir, 'mcp.json');
    writeFileSync(file, `{\n  "mcpServers": {\n    "internal": {\n      "command": "node",\n      "args": ["server.js"],\n      "env": { "INTERNAL_API_TOKEN": "${INTERNAL}" }\n    }\n  }\n}\n`);
    const dry = cli(['mcp', 'install', '--file', file, '--config', w.config, '--dry-run'], { cwd: w.dir, env: { HOME: w.dir } });
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('internal: env INTERNAL_API_TOKEN looks like a credential');
    expect(dry.stdout + dry.stderr).not.toContain(INTERNAL);
  });
});
