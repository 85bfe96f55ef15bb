import { realpathSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { ConfigErrors, loadConfig, namesToFetch, parseConfig, type Config } from '../config/index.js';
import { askAccess, maskedJson, maskedToml, planCodexInstall, planCodexUninstall, planInstall, planUninstall, serveMcp, type Classified, type InstallOptions, type McpConfigShape } from '../mcp/index.js';
import { readStore, resolveKeySource, StoreError, updateStore } from '../secrets/index.js';
import { decryptedHosts } from '../policy/index.js';
import { openCa } from '../tls/index.js';
import { ROTATE_FIX } from './ca-requirements.js';
import { addSecret } from './config-edit.js';
import { mintPlaceholder } from './placeholder.js';
import { placeholderPrefixFor, presetFor } from './presets.js';
import { CliError, EXIT } from './exit-codes.js';
import { explainForOperator } from './explain-command.js';
import type { CliIo } from './io.js';
import { VERSION } from './version.js';

export const MCP_USAGE = `usage: keyswap mcp install [--client claude-code|claude-desktop|cursor|vscode|codex] [--file PATH] [--config FILE]
                         [--host NAME] [--run-client NAME] [--dry-run]
       keyswap mcp uninstall [--client …] [--file PATH] [--config FILE]
       keyswap mcp serve [--config FILE] [--client NAME]
install: in the MCP client's config (its documented place, or --file), every credential in a stdio server's env
(found by name and value shape, as init --from-env finds them) or a remote server's headers goes into keyswap's
store, a placeholder takes its place, a binding to its API is added (presets, or --host), and each stdio server is
run behind keyswap (keyswap run -- CMD ARGS). The file is edited in place, formatting, comments and order kept, no
backup written; running it again changes nothing. --dry-run prints the diff with every credential masked.
uninstall: the servers run as before (placeholders stay: the keys are keyswap's now).
serve:
An MCP server on stdio for the agent's MCP client (add it as a stdio server: command keyswap, args mcp serve
--config FILE), with tools: keyswap_status (the placeholders this agent holds and where each may go),
keyswap_explain (what keyswap would do with a request, and why), and keyswap_request_access (asks an operator for
a binding, through the agent's proxy URL as its client). It reads the config, never the backend: no tool returns a
value. The placeholders held are those in its environment, or --client NAME's secrets.`;

export async function mcpCommand(args: string[], io: CliIo): Promise<number> {
  if (args[0] === 'install' || args[0] === 'uninstall') return installCommand(args[0], args.slice(1), io);
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
    // Through the proxy the agent uses (keyswap run sets it, with the client's credentials), else the config's listener.
    askAccess: (ask) => askAccess(io.env.HTTP_PROXY ?? io.env.http_proxy ?? io.env.HTTPS_PROXY ?? io.env.https_proxy ?? `http://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`, ask),
  });
  return EXIT.ok;
}

const CLIENTS = ['claude-code', 'claude-desktop', 'cursor', 'vscode', 'codex'] as const;
type McpClient = (typeof CLIENTS)[number];

/** Each client's documented config location (user scope; VS Code's is the workspace's .vscode/mcp.json). */
function clientFile(client: McpClient, io: CliIo): string {
  const home = io.env.HOME ?? os.homedir();
  switch (client) {
    case 'claude-code': return path.join(home, '.claude.json');
    case 'claude-desktop': return process.platform === 'darwin' ? path.join(home, 'Library/Application Support/Claude/claude_desktop_config.json') : path.join(io.env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'Claude/claude_desktop_config.json');
    case 'cursor': return path.join(home, '.cursor/mcp.json');
    case 'vscode': return path.join(io.cwd, '.vscode/mcp.json');
    case 'codex': return path.join(io.env.CODEX_HOME ?? path.join(home, '.codex'), 'config.toml');
  }
}

/**
 * How a stdio server is run behind keyswap: this node and this keyswap's main script, by absolute path, so the MCP
 * client needs neither on its PATH (an install under npm -g resolves to the same script).
 */
function wrapperOf(config: Config, runClient: string | null): InstallOptions['wrapper'] {
  const run = ['run', '--config', config.file, ...(runClient === null ? [] : ['--client', runClient])];
  return { command: process.execPath, args: [realpathSync(process.argv[1] ?? ''), ...run] };
}

async function installCommand(verb: 'install' | 'uninstall', args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { client: { type: 'string' }, file: { type: 'string' }, config: { type: 'string', default: 'keyswap.yaml' }, host: { type: 'string' }, 'run-client': { type: 'string' }, 'dry-run': { type: 'boolean', default: false } }, strict: true });
  if (values.client !== undefined && !(CLIENTS as readonly string[]).includes(values.client)) throw new CliError(`--client ${values.client}: one of ${CLIENTS.join(', ')}`, EXIT.usage);
  if (values.client === undefined && values.file === undefined) throw new CliError(`which MCP config? --client (${CLIENTS.join(', ')}) or --file PATH\n${MCP_USAGE}`, EXIT.usage);
  const file = values.file === undefined ? clientFile(values.client as McpClient, io) : path.resolve(io.cwd, values.file);
  const codex = values.client === 'codex' || file.endsWith('.toml');
  let text: string;
  let mode: number;
  try {
    text = await readFile(file, 'utf8');
    mode = (await stat(file)).mode & 0o777;
  } catch (err) {
    throw new CliError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'}); is the client's config elsewhere? pass --file PATH`, EXIT.usage);
  }
  const shape: McpConfigShape = values.client === 'vscode' || (values.client === undefined && /"servers"\s*:/.test(text) && !/"mcpServers"\s*:/.test(text)) ? 'servers' : 'mcpServers';
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  if (config.clients !== null && values['run-client'] === undefined && verb === 'install') throw new CliError(`${config.file} has clients: name the one the MCP servers run as: --run-client NAME`, EXIT.usage);
  const wrapper = wrapperOf(config, values['run-client'] ?? null);
  const fail = (err: unknown): never => { throw new CliError((err as Error).message, EXIT.usage); };

  if (verb === 'uninstall') {
    let plan: ReturnType<typeof planUninstall>;
    try { plan = codex ? planCodexUninstall(text, file) : planUninstall(text, file, shape); } catch (err) { return fail(err); }
    if (plan.servers.length === 0) {
      io.stdout.write(`${file}: no server runs behind keyswap; nothing to do\n`);
      return EXIT.ok;
    }
    await writeFileAtomic(file, plan.text, mode);
    io.stdout.write(`${file}: ${plan.servers.join(', ')} run as before, not behind keyswap; their placeholders stay (the keys are in keyswap's store: keyswap secret list)\n`);
    return EXIT.ok;
  }

  if (config.backend.type !== 'file') throw new CliError(`${config.file}: backend.type is ${config.backend.type}; mcp install moves keys into the embedded store (backend type file)`, EXIT.usage);
  // A name may be no secret's, no name the config reads (a minter's input, an alert's key), and no stored value's:
  // a credential moved in must never replace a value something else depends on.
  const taken = new Set([...config.secrets.map((s) => s.name), ...referencedNames(config), ...(await storedNames(config, io))]);
  const classify = (name: string, value: string, remoteHost: string | null): Classified | 'unknown_host' | null => {
    if (value.length < 8 || /\s/.test(value)) return null;
    if (remoteHost !== null) {
      if (!/^(authorization|proxy-authorization)$|key|token|secret|auth/i.test(name)) return null;
      return { label: 'remote MCP server', placeholder: mintPlaceholder('mcp-'), sites: [{ header: name, format: /^authorization$/i.test(name) ? 'Bearer {NAME}' : '{NAME}' }], bindings: [{ host: remoteHost, methods: null, paths: null }] };
    }
    const preset = presetFor(name, value);
    if (preset !== null) return { label: preset.label, placeholder: mintPlaceholder(placeholderPrefixFor(preset, value)), sites: preset.sites, bindings: preset.bindings.map((b) => ({ host: b.host, methods: b.methods, paths: b.paths })) };
    if (!/(TOKEN|KEY|SECRET|PASSWORD|PAT)$/i.test(name) || value.length < 16) return null;
    if (values.host === undefined) return 'unknown_host';
    return { label: values.host, placeholder: mintPlaceholder('sk-'), sites: [{ header: 'Authorization', format: 'Bearer {NAME}' }], bindings: [{ host: values.host.toLowerCase(), methods: null, paths: null }] };
  };
  const secretName = (server: string, where: 'env' | 'header', field: string): string => {
    const clean = (t: string): string => t.toUpperCase().replace(/[^A-Z0-9_]/g, '_').replace(/^([^A-Z])/, 'K$1');
    // An env variable's name says what it is; a header's (Authorization) does not without its server's.
    let name = clean(where === 'env' ? field : `${server}_${field}`);
    if (taken.has(name)) name = clean(`MCP_${server}_${field}`);
    for (let i = 2; taken.has(name); i++) name = `${clean(`MCP_${server}_${field}`)}_${i}`;
    taken.add(name);
    return name;
  };
  let plan: ReturnType<typeof planInstall>;
  try { plan = codex ? planCodexInstall(text, file, { classify, secretName, wrapper }) : planInstall(text, file, shape, { classify, secretName, wrapper }); } catch (err) { return fail(err); }
  const masked = (t: string): string => plan.moves.reduce((acc, m) => acc.split(m.value).join('***'), t);
  if (values['dry-run']) {
    const { createTwoFilesPatch } = await import('diff');
    // Masked where each string sits in the source (whatever escapes spell it), then by value as well.
    const shown = codex ? maskedToml : maskedJson;
    io.stdout.write(masked(createTwoFilesPatch(file, file, shown(text), shown(plan.text), 'now', 'after keyswap mcp install')));
    for (const m of plan.moves) io.stdout.write(`would move ${m.server}: ${m.where} ${m.field} (${m.classified.label}) to keyswap's store as ${m.secretName}, bound to ${m.classified.bindings.map((b) => b.host).join(', ')}\n`);
    for (const n of plan.notes) io.stdout.write(`${masked(n)}\n`);
    return EXIT.ok;
  }
  if (plan.text === text) {
    io.stdout.write(`${file}: nothing to do (every credential is a placeholder, every stdio server runs behind keyswap)\n`);
    for (const n of plan.notes) io.stdout.write(`${masked(n)}\n`);
    return EXIT.ok;
  }
  // Order matters for a crash at any point: the store first, then the bindings, then the client's file; until the
  // last write the keys are still in the client's file.
  if (plan.moves.length > 0) {
    // The config that will hold them is built and checked first: a refusal leaves every file and the store as it was.
    const doc = parseDocument(await readFile(config.file, 'utf8'));
    for (const m of plan.moves) addSecret(doc, { name: m.secretName, placeholder: m.classified.placeholder, sites: m.classified.sites, bindings: m.classified.bindings, route: null });
    const configText = doc.toString({ lineWidth: 0 });
    let updated: Config;
    try {
      updated = parseConfig(configText, config.file);
    } catch (err) {
      throw new CliError(`the secrets keyswap would add do not load (${err instanceof ConfigErrors ? err.errors.map((e) => e.message).join('; ') : 'invalid'}); nothing was changed`, EXIT.runtime);
    }
    try {
      const source = await resolveKeySource(config.backend, io.env);
      await updateStore(config.backend.path, source, (store) => {
        for (const m of plan.moves) store.set(m.secretName, { value: m.value, updatedAt: new Date().toISOString() });
        return true;
      });
    } catch (err) {
      if (err instanceof StoreError) throw new CliError(err.message, EXIT.runtime);
      throw err;
    }
    await writeFileAtomic(config.file, configText, ((await stat(config.file)).mode & 0o777) | 0o600, { followOperatorLink: true });
    // A CA made before these bindings does not cover their hosts: keyswap would refuse to start on it.
    const ca = await openCa(updated.stateDir, { create: false }).catch(() => null);
    const missing = ca?.uncovered(decryptedHosts(updated)) ?? [];
    if (missing.length > 0) io.stdout.write(`CA: its name constraints do not cover ${missing.join(', ')}; before keyswap serves these bindings run ${ROTATE_FIX}\n`);
  }
  await writeFileAtomic(file, plan.text, mode);
  for (const m of plan.moves) io.stdout.write(`${m.server}: ${m.where} ${m.field} (${m.classified.label}) moved to keyswap's store as ${m.secretName}; placeholder written; bound to ${m.classified.bindings.map((b) => b.host).join(', ')}\n`);
  for (const n of plan.notes) io.stdout.write(`${masked(n)}\n`);
  io.stdout.write(`\n${file} updated in place. Restart the MCP client; a running keyswap serves the new bindings after: keyswap reload\n`);
  return EXIT.ok;
}

/** Every backend name the config reads besides its secrets' own. */
export function referencedNames(config: Config): string[] {
  return [
    ...config.secrets.flatMap((s) => namesToFetch(s)),
    ...config.alerts.webhooks.map((w) => w.signingSecret),
    ...(config.alerts.email === null ? [] : [config.alerts.email.usernameSecret, config.alerts.email.passwordSecret].filter((n): n is string => n !== null)),
    ...(config.upstream.parent?.credentialsSecret ? [config.upstream.parent.credentialsSecret] : []),
    ...(config.sharedState === null ? [] : [config.sharedState.redis.passwordSecret, config.sharedState.keySecret].filter((n): n is string => n !== null)),
  ];
}

/** The names the embedded store holds now (none when it does not exist yet). */
export async function storedNames(config: Config, io: CliIo): Promise<string[]> {
  if (config.backend.type !== 'file') return [];
  try {
    return [...(await readStore(config.backend.path, await resolveKeySource(config.backend, io.env))).entries.keys()];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CliError(`${config.backend.path}: ${(err as Error).message}`, EXIT.runtime);
  }
}
