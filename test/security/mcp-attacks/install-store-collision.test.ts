import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.js';
import { readStore } from '../../../src/secrets/index.js';
import { cli } from '../../helpers/cli.js';

/*
 * Attack review of `keyswap mcp install`: the name a moved credential is stored under is checked only against the
 * config's top-level secret names (`taken` in src/cli/mcp-command.ts), not against the names the store already
 * holds or the config references (client_secret_secret, refresh_token_secret, …). An MCP server whose env variable
 * is named like one of those (GOOGLE_CLIENT_SECRET is what Google Drive/Calendar MCP servers take) silently
 * overwrites the stored value another secret depends on. keyswap.yaml is then written before it is validated.
 */
const OURS = `GOCSPX-${'ours0123456789ab'.repeat(2)}`;
const THEIRS = `GOCSPX-${'mcpserverVALUE99'.repeat(2)}`;

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('mcp install: stored names', () => {
  it('never overwrites a stored secret that the config already uses (an oauth2_refresh client secret)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keyswap-mcp-coll-'));
    dirs.push(dir);
    const config = path.join(dir, 'keyswap.yaml');
    expect(cli(['init', '--config', config], { cwd: dir, env: { HOME: dir } }).status).toBe(0);
    writeFileSync(config, readFileSync(config, 'utf8').replace('secrets: {}', `secrets:
  GOOGLE:
    placeholder: "ya29.PLACEHOLDER-google-0123456789abcdef"
    inject: { type: oauth2_refresh, provider: google, client_id_secret: GOOGLE_CLIENT_ID, client_secret_secret: GOOGLE_CLIENT_SECRET, refresh_token_secret: GOOGLE_REFRESH }
    bindings: [{ host: www.googleapis.com }]
`));
    for (const [n, v] of [['GOOGLE_CLIENT_ID', 'id-0123456789.apps.googleusercontent.com'], ['GOOGLE_CLIENT_SECRET', OURS], ['GOOGLE_REFRESH', '1//refresh-0123456789abcdef']] as const) {
      const s = cli(['secret', 'set', n, '--config', config], { cwd: dir, input: v, env: { HOME: dir } });
      expect(s.status, s.stderr).toBe(0);
    }
    const file = path.join(dir, 'mcp.json');
    writeFileSync(file, `{ "mcpServers": { "gdrive": { "command": "npx", "args": ["-y", "gdrive-mcp"], "env": { "GOOGLE_CLIENT_SECRET": "${THEIRS}" } } } }\n`);
    const r = cli(['mcp', 'install', '--file', file, '--config', config, '--host', 'www.googleapis.com'], { cwd: dir, env: { HOME: dir } });

    const store = await readStore(path.join(dir, 'certs/secrets.enc'), { kind: 'keyfile', path: path.join(dir, 'certs/store.key') });
    // The GOOGLE secret's client secret is still ours, whatever install decided about the MCP server's.
    expect(store.entries.get('GOOGLE_CLIENT_SECRET')?.value, r.stdout + r.stderr).toBe(OURS);
    // And keyswap.yaml still loads.
    await expect(loadConfig(config)).resolves.toBeDefined();
  });
});
