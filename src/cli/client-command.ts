import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isMap, parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { clientPolicy, describeClientPolicy, loadConfig, parseConfig, type Config } from '../config/index.js';
import { callControl, ControlUnavailable } from '../control/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const CLIENT_USAGE = `usage: keyswap client add NAME --secrets A,B [--expires 90d]   (prints the token once)
       keyswap client list
       keyswap client revoke NAME   (a client, or a session of keyswap run)
options: --config FILE (default ./keyswap.yaml). add: apply with keyswap reload. revoke: the running keyswap
closes the client's connections at once, and the config is edited so a restart agrees.`;

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * `keyswap client …`: agent identities in the config's `clients:` section. The token is printed once and only
 * its SHA-256 is written; the file is rewritten atomically, keeping its comments, and re-validated first.
 */
export async function clientCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', default: 'keyswap.yaml' }, secrets: { type: 'string' }, expires: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [verb, name] = positionals;
  const file = path.resolve(io.cwd, values.config);
  const config = await loadConfig(file);
  if (verb === 'list') return listClients(config, io);
  if ((verb !== 'add' && verb !== 'revoke') || name === undefined || !NAME.test(name)) throw new CliError(CLIENT_USAGE, EXIT.usage);
  const text = await readFile(file, 'utf8');
  const doc = parseDocument(text);
  if (verb === 'revoke') {
    // The running keyswap first: the kill switch must not wait on a file edit.
    const live = await revokeLive(config, name);
    if (!config.clients?.has(name)) {
      if (live === 'session') {
        io.stdout.write(`ended session ${name}: its connections are closed\n`);
        return EXIT.ok;
      }
      throw new CliError(`${name} is not a client in ${file} (see: keyswap client list)`, EXIT.runtime);
    }
    doc.deleteIn(['clients', name]);
    await writeValidated(file, doc.toString());
    const after = clientPolicy(parseConfig(doc.toString(), file).clients);
    io.stdout.write(`revoked ${name}; now ${describeClientPolicy(after)}. ${live === 'client'
      ? 'The running keyswap has closed its connections.'
      : 'No keyswap is serving this config; it applies at the next start.'}\n`);
    return EXIT.ok;
  }
  if (config.clients?.has(name)) throw new CliError(`${name} already exists; revoke it first to issue a new token`, EXIT.usage);
  const secrets = (values.secrets ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (secrets.length === 0) throw new CliError('--secrets A,B is required: the secrets this client may unlock', EXIT.usage);
  const token = `ks_${randomBytes(32).toString('base64url')}`;
  const entry: Record<string, unknown> = { token_sha256: createHash('sha256').update(token).digest('hex'), secrets };
  if (values.expires !== undefined) entry.expires = expiryFrom(values.expires);
  let edited = appendClient(text, doc, name, entry);
  if (edited === null) {
    // A flow-style or empty clients: section: re-serialised by the YAML library (comments kept, spacing not).
    if (!isMap(doc.get('clients'))) doc.set('clients', doc.createNode({}));
    doc.setIn(['clients', name], doc.createNode(entry));
    edited = doc.toString();
  }
  await writeValidated(file, edited);
  const listen = `${config.listen.host}:${config.listen.port}`;
  io.stdout.write(
    `added client ${name} (secrets: ${secrets.join(', ')}). Its token is shown this once:\n\n  ${token}\n\n` +
      `The agent uses it in its proxy URL:\n  HTTPS_PROXY=http://${name}:${token}@${listen}\nApply it to a running keyswap with: keyswap reload\n`,
  );
  return EXIT.ok;
}

/**
 * The file with one client added as text, every other line untouched (a re-serialised document reflows flow
 * collections: `[GET]` would become `[ GET ]`): appended as a new `clients:` section, or after the last entry of
 * a block-style one. Null when the section is flow-style or empty: the caller edits the document instead.
 */
function appendClient(text: string, doc: ReturnType<typeof parseDocument>, name: string, entry: Record<string, unknown>): string | null {
  const lines = [`${name}:`, ...Object.entries(entry).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)];
  const base = text.endsWith('\n') ? text : `${text}\n`;
  const clients = doc.get('clients', true);
  if (clients === undefined) return `${base}clients:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
  if (!isMap(clients) || clients.flow === true || clients.items.length === 0 || clients.range === undefined || clients.range === null) return null;
  const firstKey = clients.items[0]?.key as { range?: [number, number, number] } | undefined;
  if (firstKey?.range === undefined) return null;
  const column = firstKey.range[0] - (text.lastIndexOf('\n', firstKey.range[0] - 1) + 1);
  const lineEnd = text.indexOf('\n', Math.max(0, clients.range[1] - 1));
  const at = lineEnd < 0 ? base.length : lineEnd + 1;
  return `${base.slice(0, at)}${lines.map((l) => `${' '.repeat(column)}${l}`).join('\n')}\n${base.slice(at)}`;
}

/** Revokes on the keyswap serving this config, if one is: what it was there, or null when none answers. */
async function revokeLive(config: Config, name: string): Promise<'client' | 'session' | null> {
  let answer: Awaited<ReturnType<typeof callControl>>;
  try {
    answer = await callControl(config.stateDir, 'POST', `/v1/clients/${encodeURIComponent(name)}/revoke`, {});
  } catch (err) {
    if (err instanceof ControlUnavailable && !/permission denied/.test(err.message)) return null;
    throw new CliError(`the running keyswap could not be told: ${(err as Error).message}`, EXIT.runtime);
  }
  if (answer.status === 404) return null;
  if (answer.status !== 200) throw new CliError(`the running keyswap refused: ${String(answer.body.error ?? answer.status)}`, EXIT.runtime);
  return answer.body.kind === 'session' ? 'session' : 'client';
}

/** The config's clients and, from the running keyswap, its sessions (`keyswap run`) and what an operator revoked. */
async function listClients(config: Config, io: CliIo): Promise<number> {
  const running = await callControl(config.stateDir, 'GET', '/v1/status').then((a) => (a.status === 200 ? a.body : null), () => null);
  const policy = clientPolicy(config.clients);
  if (policy.kind !== 'named') {
    io.stdout.write(`${describeClientPolicy(policy)}${policy.kind === 'open' ? '. Add a client with: keyswap client add NAME --secrets A,B' : ''}\n`);
    return EXIT.ok;
  }
  const revoked = new Set(((running?.revoked ?? []) as { client: string }[]).map((r) => r.client));
  for (const c of config.clients?.values() ?? []) {
    const expiry = c.expiresAtMs === null ? 'never expires' : `${Date.now() >= c.expiresAtMs ? 'EXPIRED' : 'expires'} ${new Date(c.expiresAtMs).toISOString()}`;
    io.stdout.write(`${c.name}\t${[...c.secrets].join(',')}\t${expiry}${revoked.has(c.name) ? '\tREVOKED on the running keyswap' : ''}\n`);
  }
  const sessions = ((running?.clients ?? []) as { name: string; kind: string; secrets: string[]; expires: string | null; parent?: string; command?: string; started?: string }[]).filter((c) => c.kind === 'session');
  for (const s of sessions) io.stdout.write(`${s.name}\t${s.secrets.join(',')}\tsession of ${s.parent ?? '?'} since ${s.started ?? '?'}${s.expires === null ? '' : `, until ${s.expires}`}: ${s.command ?? ''}\n`);
  return EXIT.ok;
}

function expiryFrom(text: string): string {
  const m = /^([1-9][0-9]{0,4})d$/.exec(text);
  if (m) return new Date(Date.now() + Number(m[1]) * 86_400_000).toISOString();
  if (!Number.isNaN(Date.parse(text))) return new Date(text).toISOString();
  throw new CliError(`--expires takes a number of days (90d) or an ISO date, not '${text}'`, EXIT.usage);
}

async function writeValidated(file: string, text: string): Promise<void> {
  parseConfig(text, file); // never write a config keyswap would refuse
  await writeFileAtomic(file, text, 0o600, { followOperatorLink: true });
}
