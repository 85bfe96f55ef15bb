import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { parse } from 'jsonc-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { readStore } from '../../src/secrets/index.js';
import { cli, REPO } from '../helpers/cli.js';
import { startHarness } from '../helpers/harness.js';

/*
 * Issue #30, item 1: `keyswap mcp install`. Each client's config format (Claude Code, Claude Desktop, Cursor,
 * VS Code's JSONC) round-tripped from its documented shape: credentials into the store, placeholders in place,
 * stdio servers run behind keyswap, bindings added, formatting and comments kept, idempotent, --dry-run masked,
 * uninstall restoring the command. Then a real stdio MCP server (the SDK) started from a rewritten config, driven
 * by the SDK's client: its API receives the real token while the server's environment holds a placeholder.
 */
const GH = `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`;
const LINEAR = `lin_api_${'x9Y8w7V6u5'.repeat(4)}`;

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function world(): { dir: string; config: string; home: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-mcp-install-'));
  dirs.push(dir);
  const r = cli(['init', '--config', path.join(dir, 'keyswap.yaml')], { cwd: dir, env: { HOME: dir } });
  expect(r.status, r.stderr).toBe(0);
  return { dir, config: path.join(dir, 'keyswap.yaml'), home: path.join(dir, 'home') };
}

const SERVERS = (indent: string): string => `{
${indent}"github": {
${indent}${indent}"command": "npx",
${indent}${indent}"args": ["-y", "@modelcontextprotocol/server-github"],
${indent}${indent}"env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "${GH}", "LOG_LEVEL": "debug" }
${indent}},
${indent}"linear": {
${indent}${indent}"type": "http",
${indent}${indent}"url": "https://mcp.linear.app/mcp",
${indent}${indent}"headers": { "Authorization": "Bearer ${LINEAR}" }
${indent}}
}`;

const FORMATS: readonly { client: string; file: (home: string, cwd: string) => string; text: string; servers: (j: any) => any }[] = [
  { client: 'claude-code', file: (home) => path.join(home, '.claude.json'), text: `{\n  "numStartups": 12,\n  "mcpServers": ${SERVERS('  ').replace(/\n/g, '\n  ')},\n  "projects": {}\n}\n`, servers: (j) => j.mcpServers },
  { client: 'claude-desktop', file: (home) => path.join(home, '.config/Claude/claude_desktop_config.json'), text: `{\n    "mcpServers": ${SERVERS('    ').replace(/\n/g, '\n    ')}\n}\n`, servers: (j) => j.mcpServers },
  { client: 'cursor', file: (home) => path.join(home, '.cursor/mcp.json'), text: `{\n\t"mcpServers": ${SERVERS('\t').replace(/\n/g, '\n\t')}\n}\n`, servers: (j) => j.mcpServers },
  { client: 'vscode', file: (_home, cwd) => path.join(cwd, '.vscode/mcp.json'), text: `// Workspace MCP servers\n{\n  "inputs": [],\n  "servers": ${SERVERS('  ').replace(/\n/g, '\n  ')}, // trailing comma, as VS Code allows\n}\n`, servers: (j) => j.servers },
];

describe('keyswap mcp install: each client\'s config', () => {
  for (const f of FORMATS) {
    it(`${f.client}: credentials to the store, placeholders in place, servers behind keyswap, formatting kept, idempotent, uninstall`, async () => {
      const w = world();
      const file = f.file(w.home, w.dir);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, f.text, { mode: 0o600 });
      const env = { HOME: w.home };
      const args = ['mcp', 'install', '--client', f.client, '--config', w.config];

      const dry = cli([...args, '--dry-run'], { cwd: w.dir, env });
      expect(dry.status, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('+++');
      expect(dry.stdout + dry.stderr).not.toContain(GH);
      expect(dry.stdout + dry.stderr).not.toContain(LINEAR);
      expect(readFileSync(file, 'utf8')).toBe(f.text);

      const r = cli(args, { cwd: w.dir, env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(GH);
      const after = readFileSync(file, 'utf8');
      expect(after).not.toContain(GH);
      expect(after).not.toContain(LINEAR);
      const servers = f.servers(parse(after));
      expect(servers.github.env.GITHUB_PERSONAL_ACCESS_TOKEN).toMatch(/^ghp_PLACEHOLDER-/);
      expect(servers.github.env.LOG_LEVEL).toBe('debug');
      expect(servers.github.command).toBe(process.execPath);
      expect(servers.github.args.slice(1)).toEqual(['run', '--config', w.config, '--', 'npx', '-y', '@modelcontextprotocol/server-github']);
      expect(servers.linear.headers.Authorization).toMatch(/^Bearer mcp-PLACEHOLDER-/);
      expect(servers.linear.url).toBe('https://mcp.linear.app/mcp');
      // Formatting and order: the untouched lines are byte for byte what they were.
      for (const line of f.text.split('\n').filter((l) => !l.includes(GH) && !l.includes(LINEAR) && !l.includes('"args"') && !l.includes('"command"'))) expect(after).toContain(line);
      // The store holds the values, keyswap.yaml the secrets and their bindings; no backup of the old file anywhere.
      const store = await readStore(path.join(w.dir, 'certs/secrets.enc'), { kind: 'keyfile', path: path.join(w.dir, 'certs/store.key') });
      expect([...store.entries.values()].map((e) => e.value).sort()).toEqual([GH, LINEAR].sort());
      const config = parseConfig(readFileSync(w.config, 'utf8'), w.config);
      expect(config.secrets.map((s) => [s.name, s.bindings.map((b) => b.host)])).toEqual([['GITHUB_PERSONAL_ACCESS_TOKEN', ['api.github.com']], ['LINEAR_AUTHORIZATION', ['mcp.linear.app']]]);
      expect(readdirSync(path.dirname(file)).filter((n) => n !== path.basename(file) && n.startsWith(path.basename(file)))).toEqual([]);

      const again = cli(args, { cwd: w.dir, env });
      expect(again.stdout).toContain('nothing to do');
      expect(readFileSync(file, 'utf8')).toBe(after);

      const un = cli(['mcp', 'uninstall', '--client', f.client, '--config', w.config], { cwd: w.dir, env });
      expect(un.status, un.stderr).toBe(0);
      const restored = f.servers(parse(readFileSync(file, 'utf8')));
      expect([restored.github.command, restored.github.args]).toEqual(['npx', ['-y', '@modelcontextprotocol/server-github']]);
      expect(restored.github.env.GITHUB_PERSONAL_ACCESS_TOKEN).toBe(servers.github.env.GITHUB_PERSONAL_ACCESS_TOKEN);
    }, 60_000);
  }

  it('codex: config.toml edited line by line, comments kept, the result checked to parse as intended; idempotent; uninstall', async () => {
    const w = world();
    const file = path.join(w.home, '.codex/config.toml');
    mkdirSync(path.dirname(file), { recursive: true });
    const text = `# Codex settings\nmodel = "gpt-5"\n\n[mcp_servers.github]\ncommand = "npx" # from npm\nargs = ["-y", "@modelcontextprotocol/server-github"]\nenv = { "GITHUB_PERSONAL_ACCESS_TOKEN" = "${GH}", "LOG_LEVEL" = "debug" }\n\n[mcp_servers.linear]\nurl = "https://mcp.linear.app/mcp"\nhttp_headers = { "Authorization" = "Bearer ${LINEAR}" }\n`;
    writeFileSync(file, text, { mode: 0o600 });
    const env = { HOME: w.home };
    const r = cli(['mcp', 'install', '--client', 'codex', '--config', w.config], { cwd: w.dir, env });
    expect(r.status, r.stderr).toBe(0);
    const after = readFileSync(file, 'utf8');
    expect(after).not.toContain(GH);
    expect(after).not.toContain(LINEAR);
    expect(after).toContain('# Codex settings\nmodel = "gpt-5"\n');
    expect(after).toMatch(/^command = ".+" # from npm$/m);
    expect(after).toMatch(/"GITHUB_PERSONAL_ACCESS_TOKEN" = "ghp_PLACEHOLDER-[0-9A-Z]+", "LOG_LEVEL" = "debug"/);
    expect(after).toMatch(/"Authorization" = "Bearer mcp-PLACEHOLDER-[0-9A-Z]+"/);
    expect(after).toContain(`"run", "--config", ${JSON.stringify(w.config)}, "--", "npx", "-y", "@modelcontextprotocol/server-github"]`);
    const store = await readStore(path.join(w.dir, 'certs/secrets.enc'), { kind: 'keyfile', path: path.join(w.dir, 'certs/store.key') });
    expect([...store.entries.values()].map((e) => e.value).sort()).toEqual([GH, LINEAR].sort());
    expect(cli(['mcp', 'install', '--client', 'codex', '--config', w.config], { cwd: w.dir, env }).stdout).toContain('nothing to do');
    expect(cli(['mcp', 'uninstall', '--client', 'codex', '--config', w.config], { cwd: w.dir, env }).status).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^command = "npx" # from npm\nargs = \["-y", "@modelcontextprotocol\/server-github"\]$/m);
  });

  it('a credential no preset knows is left in place and named, until --host binds it; a TOML value written twice is left and said', () => {
    const w = world();
    const file = path.join(w.dir, 'mcp.json');
    writeFileSync(file, `{ "mcpServers": { "internal": { "command": "node", "args": ["s.js"], "env": { "INTERNAL_API_TOKEN": "it-${'q'.repeat(30)}" } } } }\n`);
    const r = cli(['mcp', 'install', '--file', file, '--config', w.config], { cwd: w.dir, env: { HOME: w.dir } });
    expect(r.stdout).toContain('internal: env INTERNAL_API_TOKEN looks like a credential, but no preset knows its API: left in place; pass --host HOST to bind it');
    expect(readFileSync(file, 'utf8')).toContain(`it-${'q'.repeat(30)}`);
    const toml = path.join(w.dir, 'config.toml');
    const twice = `[mcp_servers.x]\ncommand = "x"\nenv = { "OPENAI_API_KEY" = "sk-proj-${'a'.repeat(40)}" }\n# old: "sk-proj-${'a'.repeat(40)}"\n`;
    writeFileSync(toml, twice);
    const c = cli(['mcp', 'install', '--file', toml, '--config', w.config], { cwd: w.dir, env: { HOME: w.dir } });
    expect(c.stdout).toContain('x: env OPENAI_API_KEY: its value is written more than once, or escaped');
    expect(readFileSync(toml, 'utf8')).toContain(`"OPENAI_API_KEY" = "sk-proj-${'a'.repeat(40)}"`);
  });
});

describe('keyswap mcp install, end to end', () => {
  it('a real stdio MCP server started from the rewritten config: its API gets the real token, its environment holds a placeholder', async () => {
    // Its CA already covers api.example.test (the harness binds it), as a keyswap serving that API would.
    const h = await startHarness({ backend: 'backend: { type: file }' });
    await h.stop(); // `keyswap run` below is the keyswap the MCP server goes through
    // The harness's own secret is bound to the same host: keyswap reads it to scrub responses, so it is stored too.
    expect(cli(['secret', 'set', 'TEST_API_KEY', '--config', path.join(h.dir, 'keyswap.yaml')], { input: h.canary }).status).toBe(0);
    const token = `real-example-token-${'z'.repeat(24)}`;
    const file = path.join(h.dir, 'cursor-mcp.json');
    writeFileSync(file, JSON.stringify({ mcpServers: { example: { command: process.execPath, args: [path.join(REPO, 'test/fixtures/mcp/api-server.mjs')], env: { EXAMPLE_API_TOKEN: token } } } }, null, 2));
    const r = cli(['mcp', 'install', '--file', file, '--config', path.join(h.dir, 'keyswap.yaml'), '--host', 'api.example.test'], { cwd: h.dir, env: { HOME: h.dir } });
    expect(r.status, r.stderr).toBe(0);
    const entry = JSON.parse(readFileSync(file, 'utf8')).mcpServers.example as { command: string; args: string[]; env: Record<string, string> };
    expect(entry.env.EXAMPLE_API_TOKEN).toMatch(/PLACEHOLDER/);
    const client = new Client({ name: 'cursor-stand-in', version: '1.0.0' });
    try {
      const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: h.dir, ...entry.env }, cwd: h.dir, stderr: 'pipe' });
      let stderr = '';
      transport.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
      await client.connect(transport).catch((err: Error) => { throw new Error(`${err.message}: ${stderr}`); });
      const out = await client.callTool({ name: 'whoami', arguments: {} });
      const answer = JSON.parse((out.content as { text: string }[])[0]?.text ?? '{}') as { status: number; tokenIsPlaceholder: boolean };
      expect(answer).toEqual({ status: 200, tokenIsPlaceholder: true, bodyBytes: expect.any(Number) });
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${token}`);
    } finally {
      await client.close();
      await h.close();
    }
  }, 90_000);
});
