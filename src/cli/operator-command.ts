import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { ConfigErrors, loadConfig, parseConfig, type Config } from '../config/index.js';
import { callControl, ControlUnavailable, type PendingAccess, type PendingApproval } from '../control/index.js';
import { decryptedHosts } from '../policy/index.js';
import { openCa } from '../tls/index.js';
import { ROTATE_FIX } from './ca-requirements.js';
import { addBinding } from './config-edit.js';
import { reloadCommand } from './reload-command.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const LOCKDOWN_USAGE = `usage: keyswap lockdown [--reason TEXT] [--config FILE]
       keyswap lockdown --off [--config FILE]

Stops every use of a secret on the running keyswap at once, on every connection: a request that would carry
one gets 503 lockdown (traffic no binding touches is unaffected). It lasts until --off, across restarts.`;

export const APPROVALS_USAGE = `usage: keyswap approvals [--json] [--config FILE]
       keyswap approve ID [--remember DURATION] [--config FILE]
       keyswap deny ID [--config FILE]

The requests a binding's approve: holds until an operator answers. approve lets one through (--remember 1h:
also this client's next requests to the same binding with the same method, for that long); deny answers 403.

Agents' access requests (ids ar-…, from keyswap_request_access): approve adds the binding the agent asked for to
the secret in the config file (checked before the file changes), reloads keyswap and records the request as
accepted; deny declines it.`;

export const UI_USAGE = `usage: keyswap ui [--config FILE]

Prints a one-time login URL for the console (ui: listen: in the config). Open it in a browser on this machine.`;

/** The running keyswap's answer, or a clear error: not running, not allowed, or what it refused and why. */
async function call(config: Config, method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
  let answer: Awaited<ReturnType<typeof callControl>>;
  try {
    answer = await callControl(config.stateDir, method, route, body);
  } catch (err) {
    if (err instanceof ControlUnavailable) throw new CliError(err.message, EXIT.runtime);
    throw err;
  }
  if (answer.status !== 200) throw new CliError(String(answer.body.error ?? `the control API answered ${answer.status}`), answer.status === 400 || answer.status === 404 || answer.status === 409 ? EXIT.usage : EXIT.runtime);
  return answer.body;
}

async function configOf(file: string, io: CliIo): Promise<Config> {
  return loadConfig(path.resolve(io.cwd, file));
}

export async function lockdownCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, reason: { type: 'string' }, off: { type: 'boolean', default: false } }, strict: true });
  if (values.off && values.reason !== undefined) throw new CliError(`--reason goes with switching lockdown on\n${LOCKDOWN_USAGE}`, EXIT.usage);
  const config = await configOf(values.config, io);
  await call(config, 'POST', '/v1/lockdown', { on: !values.off, reason: values.reason ?? null });
  io.stdout.write(values.off
    ? 'lockdown lifted: requests carrying secrets are served again\n'
    : `lockdown ON${values.reason === undefined ? '' : ` (${values.reason})`}: every request that would carry a secret is refused with 503 until: keyswap lockdown --off\n`);
  return EXIT.ok;
}

export async function approvalsCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, json: { type: 'boolean', default: false } }, strict: true });
  const config = await configOf(values.config, io);
  const answer = await call(config, 'GET', '/v1/approvals');
  const list = answer.approvals as PendingApproval[];
  const access = (answer.access_requests ?? []) as PendingAccess[];
  if (values.json) {
    // The held requests as before (scripts approve what they find here); agents' access requests are in the text
    // and in the control API's GET /v1/approvals, never where a script would approve them blind.
    io.stdout.write(`${JSON.stringify(list, null, 1)}\n`);
    return EXIT.ok;
  }
  if (list.length === 0 && access.length === 0) {
    io.stdout.write('no request waits for approval\n');
    return EXIT.ok;
  }
  for (const a of list) {
    io.stdout.write(`${a.id}  ${a.client ?? '(no client)'}  ${a.method} ${a.host}${a.port === 443 ? '' : `:${a.port}`}${a.path}  secrets ${a.secret_names.join(',')}  waits until ${a.expires_at}\n`);
  }
  if (list.length > 0) io.stdout.write('answer with: keyswap approve ID [--remember 1h] | keyswap deny ID\n');
  if (access.length > 0) io.stdout.write(`${list.length > 0 ? '\n' : ''}access requests (an agent asks for a binding):\n`);
  for (const r of access) {
    io.stdout.write(`${r.id}  ${r.client ?? '(no client)'}  ${r.secret} → ${describeBinding(r)}  until ${r.expires_at}\n    reason (the agent's words): ${r.reason}\n`);
  }
  if (access.length > 0) io.stdout.write('accept with: keyswap approve ar-… (adds the binding and reloads) | keyswap deny ar-…\n');
  return EXIT.ok;
}

function describeBinding(r: { readonly host: string; readonly port: number | null; readonly methods: readonly string[] | null; readonly paths: readonly string[] | null }): string {
  return `${r.host}${r.port === null ? '' : `:${r.port}`}  methods ${r.methods?.join(' ') ?? 'any'}  paths ${r.paths?.join(' ') ?? 'any'}`;
}

/**
 * An agent's access request accepted: the binding it asked for is added to its secret in the config file, checked
 * as keyswap would load it before the file changes, keyswap reloads it, and only then is the request recorded as
 * accepted.
 */
async function acceptAccess(config: Config, id: string, io: CliIo): Promise<number> {
  const r = (await call(config, 'GET', `/v1/access-requests/${encodeURIComponent(id)}`)).access_request as PendingAccess;
  // Read once: what is edited is what is put back if the running keyswap refuses it.
  const before = await readFile(config.file, 'utf8');
  const doc = parseDocument(before);
  const added = addBinding(doc, r.secret, r);
  if (added === 'no_list') throw new CliError(`${config.file} has no bindings: list under secrets.${r.secret} to add to (is the secret defined in another file?); nothing changed`, EXIT.usage);
  if (added === 'shared') throw new CliError(`secrets.${r.secret} in ${config.file} carries a YAML anchor (&…): its bindings may be shared with other secrets through an alias, so adding ${id}'s binding there could bind more than ${r.secret}; nothing changed. Add it by hand, or remove the anchor and approve ${id} again`, EXIT.usage);
  const text = doc.toString({ lineWidth: 0 });
  let updated: Config;
  try {
    updated = parseConfig(text, config.file);
  } catch (err) {
    throw new CliError(`the binding ${id} asks for would not load (${err instanceof ConfigErrors ? err.errors.map((e) => e.message).join('; ') : 'invalid'}); ${config.file} is unchanged; decline it with: keyswap deny ${id}`, EXIT.usage);
  }
  // keyswap's CA is constrained to the hosts it decrypts: a new host needs a new CA, or nothing would load it.
  const ca = await openCa(updated.stateDir, { create: false }).catch(() => null);
  const missing = ca?.uncovered(decryptedHosts(updated)) ?? [];
  if (missing.length > 0) {
    throw new CliError(`${id} asks for ${missing.join(', ')}, which keyswap's CA does not cover (its name constraints list the hosts it decrypts); ${config.file} is unchanged and ${id} stays pending. To accept it: ${ROTATE_FIX}; then keyswap approve ${id} again`, EXIT.usage);
  }
  const mode = ((await stat(config.file)).mode & 0o777) | 0o600;
  await writeFileAtomic(config.file, text, mode, { followOperatorLink: true });
  io.stdout.write(`added to ${r.secret} in ${config.file}: ${describeBinding(r)}\n`);
  // Past this point a failure puts the file back and has keyswap re-read it. No config_reload record does not
  // mean the reload was not applied (keyswap applies it even when the audit log cannot take its record, and a slow
  // one records it late), and a reload that did apply leaves the binding in force without an `accepted` record
  // when that record cannot be made (the request was declined or lapsed meanwhile, the audit log failed).
  const undo = async (why: string): Promise<never> => {
    await writeFileAtomic(config.file, before, mode, { followOperatorLink: true });
    const again = await reloadCommand(['--config', config.file], io).catch(() => EXIT.runtime);
    throw new CliError(`${why}; ${config.file} is restored as it was${again === EXIT.ok ? ' and keyswap reloaded it' : ', but keyswap did not confirm reloading it: run keyswap reload (it may hold the binding until it reloads or restarts)'}`, EXIT.runtime);
  };
  const reloaded = await reloadCommand(['--config', config.file], io).catch(() => EXIT.runtime);
  // A file the running keyswap refused would also stop its next start: it goes back as it was.
  if (reloaded !== EXIT.ok) await undo(`the running keyswap did not confirm loading the binding; ${id} stays pending`);
  try {
    await call(config, 'POST', `/v1/access-requests/${encodeURIComponent(id)}/accepted`, {});
  } catch (err) {
    await undo(`${id} could not be recorded as accepted (${(err as Error).message}), so its binding is taken out again`);
  }
  io.stdout.write(`accepted ${id}\n`);
  return EXIT.ok;
}

export async function approveCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, remember: { type: 'string' } }, strict: true, allowPositionals: true });
  const [id, ...rest] = positionals;
  if (id === undefined || rest.length > 0) throw new CliError(APPROVALS_USAGE, EXIT.usage);
  const remember = values.remember === undefined ? null : seconds(values.remember);
  const config = await configOf(values.config, io);
  if (id.startsWith('ar-')) {
    if (remember !== null) throw new CliError(`--remember is for held requests; an access request becomes a binding\n${APPROVALS_USAGE}`, EXIT.usage);
    return acceptAccess(config, id, io);
  }
  await call(config, 'POST', `/v1/approvals/${encodeURIComponent(id)}/approve`, remember === null ? {} : { remember_seconds: remember });
  io.stdout.write(`approved ${id}${remember ? `; remembered for ${values.remember}` : ''}\n`);
  return EXIT.ok;
}

export async function denyCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true, allowPositionals: true });
  const [id, ...rest] = positionals;
  if (id === undefined || rest.length > 0) throw new CliError(APPROVALS_USAGE, EXIT.usage);
  const config = await configOf(values.config, io);
  if (id.startsWith('ar-')) {
    await call(config, 'POST', `/v1/access-requests/${encodeURIComponent(id)}/decline`, {});
    io.stdout.write(`declined ${id}\n`);
    return EXIT.ok;
  }
  await call(config, 'POST', `/v1/approvals/${encodeURIComponent(id)}/deny`, {});
  io.stdout.write(`denied ${id}\n`);
  return EXIT.ok;
}

export async function uiCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true });
  const config = await configOf(values.config, io);
  if (config.ui === null) throw new CliError(`${config.file} has no ui: section; add  ui: { listen: 127.0.0.1:14323 }  and restart keyswap`, EXIT.usage);
  const { url } = await call(config, 'POST', '/v1/ui/login');
  io.stdout.write(`open this on this machine within 5 minutes (it works once):\n  ${String(url)}\n`);
  return EXIT.ok;
}

/** A duration flag (--remember, --ttl): 90s, 30m, 1h, 2d, at most 30 days. */
export function seconds(text: string, flag = '--remember'): number {
  const m = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(text);
  const n = m === null ? NaN : Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (!Number.isFinite(n) || n > 30 * 86_400) throw new CliError(`${flag} ${text}: expected a duration such as 90s, 30m, 1h or 2d (at most 30d)`, EXIT.usage);
  return n;
}
