import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { serveMcp } from '../mcp/index.js';
import { CliError, EXIT } from './exit-codes.js';
import { explainForOperator } from './explain-command.js';
import type { CliIo } from './io.js';
import { VERSION } from './version.js';

export const MCP_USAGE = `usage: keyswap mcp serve [--config FILE] [--client NAME]
An MCP server on stdio for the agent's MCP client (add it as a stdio server: command keyswap, args mcp serve
--config FILE), with read-only tools: keyswap_status (the placeholders this agent holds and where each may go) and
keyswap_explain (what keyswap would do with a request, and why). It reads the config, never the backend: no tool
returns a value. The placeholders held are those in its environment, or --client NAME's secrets.`;

export async function mcpCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, client: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1 || positionals[0] !== 'serve') throw new CliError(MCP_USAGE, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const client = values.client === undefined ? null : config.clients?.get(values.client) ?? null;
  if (values.client !== undefined && client === null) throw new CliError(`--client ${values.client}: no such client in ${config.file}`, EXIT.usage);
  const env = Object.values(io.env).filter((v): v is string => typeof v === 'string');
  const held = config.secrets.filter((s) => (client === null ? env.some((v) => v.includes(s.placeholder)) : client.secrets.has(s.name)));
  await serveMcp({
    config,
    held,
    version: VERSION,
    explain: (q) => explainForOperator(config, { method: q.method, url: q.url, headers: q.headers, client: client?.name ?? null, secret: q.secret }),
  });
  return EXIT.ok;
}
