import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isMap, parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { clientPolicy, describeClientPolicy, loadConfig, parseConfig } from '../config/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const CLIENT_USAGE = `usage: keyswap client add NAME --secrets A,B [--expires 90d]   (prints the token once)
       keyswap client list
       keyswap client revoke NAME
options: --config FILE (default ./keyswap.yaml). Restart keyswap to apply.`;

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
  if (verb === 'list') {
    const policy = clientPolicy(config.clients);
    if (policy.kind !== 'named') {
      io.stdout.write(`${describeClientPolicy(policy)}${policy.kind === 'open' ? '. Add a client with: keyswap client add NAME --secrets A,B' : ''}\n`);
      return EXIT.ok;
    }
    for (const c of config.clients?.values() ?? []) {
      const expiry = c.expiresAtMs === null ? 'never expires' : `${Date.now() >= c.expiresAtMs ? 'EXPIRED' : 'expires'} ${new Date(c.expiresAtMs).toISOString()}`;
      io.stdout.write(`${c.name}\t${[...c.secrets].join(',')}\t${expiry}\n`);
    }
    return EXIT.ok;
  }
  if ((verb !== 'add' && verb !== 'revoke') || name === undefined || !NAME.test(name)) throw new CliError(CLIENT_USAGE, EXIT.usage);
  const text = await readFile(file, 'utf8');
  const doc = parseDocument(text);
  if (verb === 'revoke') {
    if (!config.clients?.has(name)) throw new CliError(`${name} is not a client in ${file} (see: keyswap client list)`, EXIT.runtime);
    doc.deleteIn(['clients', name]);
    await writeValidated(file, doc.toString());
    const after = clientPolicy(parseConfig(doc.toString(), file).clients);
    io.stdout.write(`revoked ${name}; now ${describeClientPolicy(after)}. Apply it to a running keyswap with: keyswap reload\n`);
    return EXIT.ok;
  }
  if (config.clients?.has(name)) throw new CliError(`${name} already exists; revoke it first to issue a new token`, EXIT.usage);
  const secrets = (values.secrets ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (secrets.length === 0) throw new CliError('--secrets A,B is required: the secrets this client may unlock', EXIT.usage);
  const token = `ks_${randomBytes(32).toString('base64url')}`;
  const entry: Record<string, unknown> = { token_sha256: createHash('sha256').update(token).digest('hex'), secrets };
  if (values.expires !== undefined) entry.expires = expiryFrom(values.expires);
  if (!isMap(doc.get('clients'))) doc.set('clients', doc.createNode({}));
  doc.setIn(['clients', name], doc.createNode(entry));
  await writeValidated(file, doc.toString());
  const listen = `${config.listen.host}:${config.listen.port}`;
  io.stdout.write(
    `added client ${name} (secrets: ${secrets.join(', ')}). Its token is shown this once:\n\n  ${token}\n\n` +
      `The agent uses it in its proxy URL:\n  HTTPS_PROXY=http://${name}:${token}@${listen}\nApply it to a running keyswap with: keyswap reload\n`,
  );
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
