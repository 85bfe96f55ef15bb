import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../../helpers/cli.js';

/*
 * Attack review of `keyswap mcp install`: the MCP client reads its config with JSON.parse (Claude Code, Cursor,
 * Claude Desktop) or a JSONC parser that also takes the last duplicate key (VS Code). keyswap reads the same text
 * with jsonc-parser's parse (last key wins) but edits it with modify(), which finds the FIRST property of a name.
 * So with a duplicated key the placeholder is written over the first copy, and the copy the client reads (the last)
 * still holds the real key: "updated in place" while the credential stays in the file and the client keeps using it.
 * A server named __proto__ is never seen at all (jsonc-parser's object assignment sets the prototype).
 */
const GH1 = `ghp_${'Aa1Bb2Cc3D'.repeat(3)}first1`;
const GH2 = `ghp_${'Zz9Yy8Xx7W'.repeat(3)}second`;

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function world(): { dir: string; config: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-mcp-dup-'));
  dirs.push(dir);
  const r = cli(['init', '--config', path.join(dir, 'keyswap.yaml')], { cwd: dir, env: { HOME: dir } });
  expect(r.status, r.stderr).toBe(0);
  return { dir, config: path.join(dir, 'keyswap.yaml') };
}

describe('mcp install: duplicate JSON keys', () => {
  // keyswap refuses such a file, naming the key and its line, and changes nothing: it never reports a file safe
  // while the copy the MCP client reads still holds the real key.
  const refused = (w: { dir: string; config: string }, file: string, line: number, key: string): void => {
    const before = readFileSync(file, 'utf8');
    const r = cli(['mcp', 'install', '--file', file, '--config', w.config], { cwd: w.dir, env: { HOME: w.dir } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${file}:${line}: "${key}" is written twice in one object`);
    expect(r.stdout).not.toContain('updated in place');
    expect(readFileSync(file, 'utf8')).toBe(before);
  };

  it('a duplicated env variable: the copy the MCP client reads (the last) must not keep the real key', () => {
    const w = world();
    const file = path.join(w.dir, 'mcp.json');
    writeFileSync(file, `{\n  "mcpServers": {\n    "github": {\n      "command": "npx",\n      "args": ["-y", "@modelcontextprotocol/server-github"],\n      "env": {\n        "GITHUB_PERSONAL_ACCESS_TOKEN": "${GH1}",\n        "GITHUB_PERSONAL_ACCESS_TOKEN": "${GH2}"\n      }\n    }\n  }\n}\n`);
    refused(w, file, 8, 'GITHUB_PERSONAL_ACCESS_TOKEN');
  });

  it('a duplicated server name: the server the client runs (the last) must be the one wrapped and stripped', () => {
    const w = world();
    const file = path.join(w.dir, 'mcp.json');
    writeFileSync(file, `{\n  "mcpServers": {\n    "github": { "command": "echo", "args": ["old entry"] },\n    "github": {\n      "command": "npx",\n      "args": ["-y", "@modelcontextprotocol/server-github"],\n      "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "${GH2}" }\n    }\n  }\n}\n`);
    refused(w, file, 4, 'github');
  });

  it('a server named __proto__ (an own key for JSON.parse) is moved, or at least named, not silently skipped', () => {
    const w = world();
    const file = path.join(w.dir, 'mcp.json');
    writeFileSync(file, `{ "mcpServers": { "__proto__": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "${GH1}" } } } }\n`);
    const r = cli(['mcp', 'install', '--file', file, '--config', w.config], { cwd: w.dir, env: { HOME: w.dir } });
    const clientView = Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { mcpServers: object }).mcpServers);
    expect(clientView).toEqual(['__proto__']); // the MCP client does start this server
    const moved = !readFileSync(file, 'utf8').includes(GH1);
    expect(moved || /__proto__/.test(r.stdout + r.stderr)).toBe(true);
  });
});
