import { spawn } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { clientPolicy, describeClientPolicy, loadConfig, type Config } from '../config/index.js';
import { writeFileAtomic } from '../atomic-file.js';
import { createLogger } from '../log.js';
import { agentEnvironment, agentEnvironmentNotes, backendMaterialNames, exportLines } from './agent-env.js';
import { DotEnv } from './dotenv.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { agentTrust, isStateDirPrivate } from './agent-files.js';
import { looksLikeRealKey } from './presets.js';
import { runningServe } from './pid-file.js';
import { seconds } from './operator-command.js';
import { ControlUnavailable, openControl } from '../control/index.js';
import { start, type Started } from './runtime.js';
import { IDENTITY_PUBLIC_FILE, isIdentityPublicKey, verifyIdentity } from '../tls/index.js';

export const RUN_USAGE = `usage: keyswap run [--config FILE] [--env-file FILE] [--client NAME [--token-file FILE | --cert FILE --key FILE] [--secrets A,B] [--ttl 1h]] [--allow-non-loopback] -- CMD [ARGS…]
       keyswap env [--config FILE] [--env-file FILE] [--client NAME [--token-file FILE]]

run: starts CMD behind keyswap: every proxy variable, keyswap's CA for each runtime that reads one (Node,
     OpenSSL, Python, curl, git, Go, Perl, wget, PHP, AWS SDKs…), a preload that makes Node's fetch() and
     node:https use the proxy, and the placeholders (from the config and FILE). It uses the keyswap
     already serving this config, or starts one for as long as CMD runs, on a free port of the config's listen
     host, which must be loopback unless --allow-non-loopback is given (as for serve). Signals go to CMD; its
     exit code is keyswap's.
env: prints the same environment as export lines for the keyswap serving this config: eval "$(keyswap env)".
--client: with a clients: section, the agent's identity; its token (from --token-file, 0600, or
     $KEYSWAP_CLIENT_TOKEN) goes into every proxy variable as http://NAME:TOKEN@host:port. A client with a
     spiffe_id presents its certificate instead (--cert, --key): the proxy variables name the TLS listener
     (https://), and Node and curl are set up to present the certificate to it.
     A token client's command runs as a session of its own: a fresh token, the client's secrets (or only
     --secrets A,B of them), ended when CMD exits or after --ttl; listed by keyswap client list and revocable
     with keyswap client revoke run-…, without touching the client's own token.`;

interface Endpoint { readonly proxyUrl: string; readonly caPath: string; readonly bundlePath: string; readonly tlsProxyUrl?: string | null }

interface RunOptions { config: string; envFile: string | undefined; allowNonLoopback: boolean; client: string | undefined; tokenFile: string | undefined; cert: string | undefined; key: string | undefined; secrets: string | undefined; ttl: string | undefined; command: string[] }

/** How the agent proves who it is: a token in the proxy URL, or its certificate on the TLS listener. */
type Credentials = { readonly kind: 'token'; readonly name: string; readonly token: string } | { readonly kind: 'cert'; readonly name: string; readonly cert: string; readonly key: string; readonly ca: string };

function parse(args: string[]): RunOptions {
  const dash = args.indexOf('--');
  const own = dash < 0 ? args : args.slice(0, dash);
  const { values, positionals } = parseArgs({
    args: own,
    options: {
      config: { type: 'string', default: 'keyswap.yaml' },
      'env-file': { type: 'string' },
      'allow-non-loopback': { type: 'boolean', default: false },
      client: { type: 'string' },
      'token-file': { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      secrets: { type: 'string' },
      ttl: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  return {
    config: values.config,
    envFile: values['env-file'],
    allowNonLoopback: values['allow-non-loopback'],
    client: values.client,
    tokenFile: values['token-file'],
    cert: values.cert,
    key: values.key,
    secrets: values.secrets,
    ttl: values.ttl,
    command: dash < 0 ? positionals : [...positionals, ...args.slice(dash + 1)],
  };
}

/**
 * The proxy URL the agent gets, with NAME:TOKEN in it when the config names clients (config/clientPolicy, the
 * rule the proxy applies): a URL without them would be answered 407 on every request.
 */
async function clientCredentials(config: Config, opts: RunOptions, io: CliIo): Promise<Credentials | null> {
  const policy = clientPolicy(config.clients);
  if (policy.kind === 'open') {
    if (opts.client !== undefined) throw new CliError(`--client ${opts.client}: ${config.file} has no clients: section, so any local process may use keyswap; leave --client out`, EXIT.usage);
    return null;
  }
  if (policy.kind === 'closed') throw new CliError(`${config.file}: ${describeClientPolicy(policy)}`, EXIT.usage);
  if (opts.client === undefined) throw new CliError(`${config.file} names clients (${policy.names.join(', ')}): pass --client NAME, with its token in --token-file FILE or $KEYSWAP_CLIENT_TOKEN`, EXIT.usage);
  const client = config.clients?.get(opts.client);
  if (client === undefined) throw new CliError(`--client ${opts.client}: no such client in ${config.file} (${policy.names.join(', ')})`, EXIT.usage);
  if (client.expiresAtMs !== null && Date.now() >= client.expiresAtMs) throw new CliError(`--client ${opts.client}: expired ${new Date(client.expiresAtMs).toISOString()}`, EXIT.usage);
  if (client.spiffeId !== null) return certCredentials(config, client.name, client.spiffeId, opts, io);
  if (opts.cert !== undefined || opts.key !== undefined) throw new CliError(`--client ${opts.client} is a token client; --cert and --key are for clients with a spiffe_id`, EXIT.usage);
  const token = await clientToken(opts, io);
  if (createHash('sha256').update(token).digest('hex') !== client.tokenSha256) throw new CliError(`--client ${opts.client}: that token is not this client's (keyswap client add printed it once)`, EXIT.usage);
  return { kind: 'token', name: client.name, token };
}

/**
 * A SPIFFE client: its certificate and key, checked now (readable, the key private, the certificate carrying the
 * client's ID and not expired) so a mistake is named here rather than as a 407 inside the agent.
 */
async function certCredentials(config: Config, name: string, spiffeId: string, opts: RunOptions, io: CliIo): Promise<Credentials> {
  if (opts.cert === undefined || opts.key === undefined) throw new CliError(`--client ${name} is identified by its certificate (${spiffeId}): pass --cert FILE and --key FILE (its X.509-SVID and key)`, EXIT.usage);
  if (config.listenTls === null) throw new CliError(`${config.file}: a certificate client needs listen_tls`, EXIT.usage);
  const cert = path.resolve(io.cwd, opts.cert);
  const key = path.resolve(io.cwd, opts.key);
  const pem = await readFile(cert, 'utf8').catch(() => null);
  if (pem === null) throw new CliError(`--cert ${opts.cert}: cannot read it`, EXIT.usage);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    throw new CliError(`--cert ${opts.cert}: not a PEM certificate`, EXIT.usage);
  }
  if (!(x509.subjectAltName ?? '').split(', ').includes(`URI:${spiffeId}`)) throw new CliError(`--cert ${opts.cert} does not carry ${spiffeId} (client ${name}'s spiffe_id); its SANs: ${x509.subjectAltName ?? 'none'}`, EXIT.usage);
  if (Date.now() >= Date.parse(x509.validTo)) throw new CliError(`--cert ${opts.cert} expired ${x509.validTo}`, EXIT.usage);
  const mode = await stat(key).then((s) => s.mode, () => null);
  if (mode === null) throw new CliError(`--key ${opts.key}: cannot read it`, EXIT.usage);
  if ((mode & 0o077) !== 0) throw new CliError(`--key ${opts.key} is readable by group or others; run: chmod 600 ${key}`, EXIT.usage);
  return { kind: 'cert', name, cert, key, ca: config.listenTls.clientCaFile };
}

function withCredentials(endpoint: Endpoint, creds: Credentials | null): Endpoint {
  if (creds === null) return endpoint;
  if (creds.kind === 'cert') {
    if (!endpoint.tlsProxyUrl) throw new CliError('the keyswap serving this config has no TLS listener (listen_tls)', EXIT.runtime);
    return { ...endpoint, proxyUrl: endpoint.tlsProxyUrl };
  }
  const u = new URL(endpoint.proxyUrl);
  u.username = encodeURIComponent(creds.name);
  u.password = encodeURIComponent(creds.token);
  return { ...endpoint, proxyUrl: u.href.replace(/\/$/, '') };
}

async function clientToken(opts: RunOptions, io: CliIo): Promise<string> {
  if (opts.tokenFile === undefined) {
    const token = io.env.KEYSWAP_CLIENT_TOKEN;
    if (token === undefined || token === '') throw new CliError(`--client ${opts.client ?? ''}: give its token in --token-file FILE (0600) or $KEYSWAP_CLIENT_TOKEN`, EXIT.usage);
    return token;
  }
  const file = path.resolve(io.cwd, opts.tokenFile);
  const mode = await stat(file).then((s) => s.mode, () => null);
  if (mode === null) throw new CliError(`--token-file ${opts.tokenFile}: cannot read it`, EXIT.usage);
  if ((mode & 0o077) !== 0) throw new CliError(`--token-file ${opts.tokenFile} is readable by group or others; run: chmod 600 ${file}`, EXIT.usage);
  return (await readFile(file, 'utf8')).trim();
}

async function readEnvFile(io: CliIo, file: string | undefined): Promise<Record<string, string>> {
  if (file === undefined) return {};
  try {
    return DotEnv.parse(await readFile(path.resolve(io.cwd, file), 'utf8')).toRecord();
  } catch (err) {
    throw new CliError(`--env-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, EXIT.usage);
  }
}

/**
 * The environment the agent gets: its own, the env file's, less the backend material (named on stderr), then
 * keyswap's (which wins: placeholders, proxy, CA). keyswap's own environment keeps the material: an env-backend
 * keyswap started here reads its secrets from it.
 */
function childEnvironment(io: CliIo, config: Config, endpoint: Endpoint, fromFile: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(io.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, fromFile);
  // K1: a secret the env backend holds is no placeholder once the agent can read it from its own environment.
  const removed = backendMaterialNames(env, config);
  for (const name of removed) delete env[name];
  if (removed.length > 0) io.stderr.write(`keyswap: removed ${removed.join(', ')} from the command's environment (backend material)\n`);
  const input = { ...endpoint, secrets: config.secrets, inherited: { ...env } };
  for (const note of agentEnvironmentNotes(input)) io.stderr.write(`keyswap: note: ${note}\n`);
  for (const [k, v] of agentEnvironment(input)) env[k] = v;
  return env;
}

/** A real key left in the agent's environment is exactly what keyswap exists to prevent: say so, by name. */
function warnAboutRealKeys(io: CliIo, env: Record<string, string>): void {
  for (const [name, value] of Object.entries(env)) {
    const provider = looksLikeRealKey(name, value);
    if (provider !== null) {
      io.stderr.write(`keyswap: warning: ${name} looks like a real ${provider} key and the command will see it; move it into keyswap with: keyswap init --from-env FILE\n`);
    }
  }
}

/**
 * The keyswap serving this config, if one is: its pid file names a live `keyswap serve` that answers healthz.
 * A keyswap under its own UID (keyswap install) keeps its pid file where this user cannot read it: then the
 * config's listen address is where it serves.
 */
async function runningEndpoint(config: Config, env: Readonly<Record<string, string | undefined>>): Promise<Endpoint | null> {
  const url = (await runningServe(config.stateDir))?.url ?? (await isStateDirPrivate(config) ? listenUrl(config) : undefined);
  if (url === undefined || !/^http:\/\/[^/]+$/.test(url)) return null;
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  const health = await localGet(host, Number(port), '/healthz');
  if (health?.status !== 200) return null;
  // What answers is the keyswap of this config, not a process that took its port while it was down: it proves it
  // holds the identity key before a token, or an agent's traffic, goes there.
  const verified = await verifyIdentityAt(config, host, Number(port));
  // The agent is handed the address that proved itself, not a name it might resolve to another (`localhost` to ::1
  // where a squatter listens, when keyswap is on 127.0.0.1).
  return { proxyUrl: `http://${verified}`, tlsProxyUrl: config.listenTls === null ? null : `https://${hostPort(config.listenTls.listen)}`, ...(await agentTrust(config, env)) };
}

/** keyswap's identity public key: in the state directory, or as install published it beside the config. */
async function identityPublicKey(config: Config): Promise<string | null> {
  for (const file of [path.join(config.stateDir, IDENTITY_PUBLIC_FILE), path.join(path.dirname(config.file), IDENTITY_PUBLIC_FILE)]) {
    const pem = await readFile(file, 'utf8').catch(() => null);
    if (pem !== null && isIdentityPublicKey(pem)) return pem;
  }
  return null;
}

/** The address (host:port, IPv6 in brackets) of the keyswap that proved it holds the identity key. */
async function verifyIdentityAt(config: Config, host: string, port: number): Promise<string> {
  const at = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const publicKey = await identityPublicKey(config);
  if (publicKey === null) {
    throw new CliError(`cannot tell whether what answers on ${at} is keyswap: no identity.pub in ${config.stateDir} or beside ${config.file} (keyswap serve makes it; sudo keyswap install publishes it); nothing was sent`, EXIT.runtime);
  }
  const nonce = randomBytes(32).toString('hex');
  const answer = await localGet(host, port, `/identity?nonce=${nonce}`);
  let proof = '';
  try {
    proof = (JSON.parse(answer?.body ?? '') as { proof?: unknown }).proof as string;
  } catch {
    proof = '';
  }
  // The address this connection reached, as keyswap reads it from its side: a proof made for another address (a
  // squatter relaying the question to a keyswap elsewhere) does not verify.
  if (answer?.status !== 200 || typeof proof !== 'string' || !verifyIdentity(publicKey, nonce, answer.peer, proof)) {
    throw new CliError(`what answers on ${at} is not the keyswap of ${config.file}: it cannot prove it holds keyswap's identity key (another process may have taken the port while keyswap was down); nothing was sent and the command was not started`, EXIT.runtime);
  }
  const colon = answer.peer.lastIndexOf(':');
  const address = answer.peer.slice(0, colon);
  return `${address.includes(':') ? `[${address}]` : address}${answer.peer.slice(colon)}`;
}

/**
 * One GET of keyswap's own endpoints through the proxy at host:port, with the address the connection reached
 * (host:port, no brackets); null when nothing answers in time.
 */
function localGet(host: string, port: number, endpoint: string): Promise<{ status: number; body: string; peer: string } | null> {
  return new Promise((resolve) => {
    const req = http.request({ host, port, method: 'GET', path: `http://keyswap.invalid${endpoint}`, timeout: 2000, agent: false }, (res) => {
      const peer = `${(res.socket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${res.socket.remotePort ?? 0}`;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4096) body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peer }));
      res.on('error', () => resolve(null));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function listenUrl(config: Config): string {
  return `http://${hostPort(config.listen)}`;
}

function hostPort({ host, port }: { readonly host: string; readonly port: number }): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export async function runCommand(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  const [cmd, ...cmdArgs] = opts.command;
  if (cmd === undefined) throw new CliError(`nothing to run\n${RUN_USAGE}`, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, opts.config));
  const fromFile = await readEnvFile(io, opts.envFile);
  const creds = await clientCredentials(config, opts, io);

  let own: Started | null = null;
  let endpoint = await runningEndpoint(config, io.env);
  if (endpoint === null && await isStateDirPrivate(config)) {
    throw new CliError(`${config.stateDir} belongs to a keyswap under its own user, and nothing answers on ${listenUrl(config)}: start it (sudo systemctl start keyswap)`, EXIT.runtime);
  }
  if (endpoint === null) {
    // No keyswap serves this config: run one for as long as the command runs, on any free port of its host.
    own = await start(config, io, createLogger('warn'), {
      metricsAt: null,
      allowNonLoopback: opts.allowNonLoopback,
      writePid: false,
      listen: { host: config.listen.host, port: 0 },
      ...(config.listenTls === null ? {} : { listenTls: { host: config.listenTls.listen.host, port: 0 } }),
      announce: () => {},
    });
    endpoint = own;
    io.stderr.write(`keyswap: serving ${cmd} on ${own.proxyUrl} (audit: ${config.audit.path})\n`);
  }
  const session = await openSession(config, own, creds, opts, [cmd, ...cmdArgs], io);
  const env = childEnvironment(io, config, withCredentials(endpoint, session?.creds ?? creds), fromFile);
  if (creds?.kind === 'cert') Object.assign(env, await certEnvironment(creds, endpoint, io));
  warnAboutRealKeys(io, env);

  // Order matters: the handlers exist before the child does. The child can print (and be signalled about) its
  // readiness before this process runs another statement; a signal with no handler yet would kill keyswap and
  // leave the child running.
  let early: NodeJS.Signals | null = null;
  let target: ReturnType<typeof spawn> | null = null;
  const forward = (signal: NodeJS.Signals): void => {
    if (target === null) early = signal;
    else target.kill(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  const child = spawn(cmd, cmdArgs, { stdio: 'inherit', env, cwd: io.cwd });
  target = child;
  if (early !== null) child.kill(early);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      io.stderr.write(`keyswap: cannot run ${cmd}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (status, signal) => resolve(status ?? 128 + (signal ? osSignalNumber(signal) : 0)));
  });
  for (const s of signals) process.off(s, forward);
  await session?.end();
  await own?.stop('command exited');
  return code;
}

/**
 * The command's own session (control/operator.ts): opened on the keyswap serving this config through its control
 * socket, held open for as long as the command runs (a run that dies takes its session with it), or on the keyswap
 * this run started. Null for a certificate client, an open config, or a keyswap whose control socket this user
 * cannot reach (it runs under its own user): the command then uses the client's own token, as said on stderr.
 */
async function openSession(config: Config, own: Started | null, creds: Credentials | null, opts: RunOptions, command: readonly string[], io: CliIo): Promise<{ readonly creds: Credentials; end(): Promise<void> } | null> {
  const wanted = { secrets: opts.secrets === undefined ? null : opts.secrets.split(',').map((x) => x.trim()).filter(Boolean), ttlSeconds: opts.ttl === undefined ? null : seconds(opts.ttl, '--ttl') };
  if (creds?.kind !== 'token') {
    if (opts.secrets !== undefined || opts.ttl !== undefined) throw new CliError('--secrets and --ttl scope a session of a token client (--client NAME with its token)', EXIT.usage);
    return null;
  }
  // The command line as the operator's views show it: a placeholder in it becomes {NAME} (the console never shows
  // one), and the audit record gets only the program's name (an argument may be anything, a pasted key included).
  const shown = command.map((word) => shownWord(config, word)).join(' ').slice(0, 200);
  if (own !== null) {
    const s = await own.operator.startSession('cli', { parent: creds.name, secrets: wanted.secrets, ttlMs: wanted.ttlSeconds === null ? null : wanted.ttlSeconds * 1000, command: shown })
      .catch((err: Error) => { throw new CliError(err.message, EXIT.usage); });
    return { creds: { kind: 'token', name: s.name, token: s.token }, end: () => own.operator.endSession('cli', s.name) };
  }
  let res: Awaited<ReturnType<typeof openControl>>;
  try {
    res = await openControl(config.stateDir, 'POST', '/v1/sessions', { parent: creds.name, secrets: wanted.secrets, ttl_seconds: wanted.ttlSeconds, command: shown });
  } catch (err) {
    if (!(err instanceof ControlUnavailable)) throw err;
    if (wanted.secrets !== null || wanted.ttlSeconds !== null) throw new CliError(`--secrets and --ttl need a session, and ${err.message}`, EXIT.runtime);
    io.stderr.write(`keyswap: note: no session for this command (${err.message}); it uses client ${creds.name}'s own token\n`);
    return null;
  }
  const first = await firstLine(res);
  let answer: { name?: unknown; token?: unknown; error?: unknown } = {};
  try {
    answer = JSON.parse(first) as typeof answer;
  } catch { /* named below */ }
  if (res.statusCode !== 200 || typeof answer.name !== 'string' || typeof answer.token !== 'string') {
    res.destroy();
    throw new CliError(`the running keyswap refused a session: ${typeof answer.error === 'string' ? answer.error : `status ${res.statusCode ?? 0}`}`, EXIT.usage);
  }
  const name = answer.name;
  io.stderr.write(`keyswap: session ${name} (client ${creds.name}); it ends when ${command[0] ?? 'the command'} exits\n`);
  return {
    creds: { kind: 'token', name, token: answer.token },
    end: async () => { res.destroy(); },
  };
}

/** A word of the command line as operators see it: a placeholder as {NAME}, a value shaped like a provider's key as ***. */
function shownWord(config: Config, word: string): string {
  const masked = config.secrets.reduce((w, s) => w.replaceAll(s.placeholder, `{${s.name}}`), word);
  const eq = masked.indexOf('=');
  const value = eq < 0 ? masked : masked.slice(eq + 1);
  const keyLike = value.split(/[\s:,'"]+/).some((part) => looksLikeRealKey('', part) !== null);
  return keyLike ? `${eq < 0 ? '' : masked.slice(0, eq + 1)}***` : masked;
}

/** The first line of a streamed answer (the session's token), leaving the stream open. */
function firstLine(res: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0 && text.length < 65_536) return;
      res.off('data', onData);
      res.off('end', onEnd);
      res.pause();
      resolve(nl < 0 ? text : text.slice(0, nl));
    };
    const onEnd = (): void => resolve(text);
    res.on('data', onData);
    res.once('end', onEnd);
  });
}

/**
 * What makes the agent's clients present its certificate to keyswap's TLS listener: the Node preload reads
 * KEYSWAP_PROXY_CERT/_KEY/_CA (fetch and node:https); curl reads a .curlrc under CURL_HOME with its --proxy-cert,
 * --proxy-key and --proxy-cacert (the user's own ~/.curlrc is read first, if any). Python's requests cannot present
 * a certificate to a proxy.
 */
async function certEnvironment(creds: Extract<Credentials, { kind: 'cert' }>, endpoint: Endpoint, io: CliIo): Promise<Record<string, string>> {
  const dir = path.join(path.dirname(endpoint.bundlePath), `curl-${creds.name}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const own = io.env.HOME === undefined ? null : path.join(io.env.CURL_HOME ?? io.env.HOME, '.curlrc');
  const quote = (f: string): string => `"${f.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  const lines = [...(own !== null && existsSync(own) ? [`config = ${quote(own)}`] : []), `proxy-cert = ${quote(creds.cert)}`, `proxy-key = ${quote(creds.key)}`, `proxy-cacert = ${quote(creds.ca)}`];
  await writeFileAtomic(path.join(dir, '.curlrc'), `${lines.join('\n')}\n`, 0o600);
  return { KEYSWAP_PROXY_CERT: creds.cert, KEYSWAP_PROXY_KEY: creds.key, KEYSWAP_PROXY_CA: creds.ca, CURL_HOME: dir };
}

export async function envCommand(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  if (opts.command.length > 0) throw new CliError(`keyswap env takes no command (did you mean keyswap run?)\n${RUN_USAGE}`, EXIT.usage);
  if (opts.allowNonLoopback) throw new CliError('keyswap env starts no listener; --allow-non-loopback belongs to keyswap serve or keyswap run', EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, opts.config));
  const fromFile = await readEnvFile(io, opts.envFile);
  const creds = await clientCredentials(config, opts, io);
  const running = await runningEndpoint(config, io.env);
  const bare: Endpoint = running ?? (await isStateDirPrivate(config)
    ? { proxyUrl: listenUrl(config), ...(await agentTrust(config, io.env)) }
    : { proxyUrl: listenUrl(config), caPath: path.join(config.stateDir, 'ca.pem'), bundlePath: path.join(config.stateDir, 'ca-bundle.pem') });
  if (creds?.kind === 'cert') throw new CliError('keyswap env prints no certificate settings; start the agent with keyswap run --client NAME --cert FILE --key FILE', EXIT.usage);
  const endpoint = withCredentials(bare, creds);
  const input = { ...endpoint, secrets: config.secrets, inherited: io.env };
  const env = agentEnvironment(input);
  for (const note of agentEnvironmentNotes(input)) io.stderr.write(`keyswap: note: ${note}\n`);
  const names = new Set(env.map(([k]) => k));
  // K1: backend material from the env file is never printed; in the shell itself it cannot be taken back, so say so.
  const material = new Set(backendMaterialNames(fromFile, config));
  const extra = Object.entries(fromFile).filter(([k]) => !names.has(k) && !material.has(k));
  io.stdout.write(`${exportLines([...env, ...extra])}\n`);
  if (material.size > 0) io.stderr.write(`keyswap: left ${[...material].join(', ')} out of the export lines (backend material)\n`);
  const inShell = backendMaterialNames(io.env, config);
  if (inShell.length > 0) {
    io.stderr.write(`keyswap: warning: this shell holds ${inShell.join(', ')} (backend material) and every command started from it sees them; unset them, or start the agent with keyswap run, which removes them\n`);
  }
  if (running === null) io.stderr.write(`keyswap: note: no keyswap is serving ${config.file} yet; start it with: keyswap serve --config ${config.file}\n`);
  return EXIT.ok;
}

function osSignalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR2: 12, SIGTERM: 15 };
  return numbers[signal] ?? 0;
}
