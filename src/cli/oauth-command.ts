import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { mintPlaceholder } from './placeholder.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { backendOfSecret, ConfigErrors, loadConfig, parseConfig, type Config, type MinterSpec, type SecretSpec } from '../config/index.js';
import { beginLogin, finishLogin, LoginError, loginServer, mcpLoginServer, registerClient } from '../mint/index.js';
import { peerUid, tokenTransport, UpstreamClient } from '../proxy/index.js';
import { openBackends, Secret } from '../secrets/index.js';
import { addSecret } from './config-edit.js';
import { backendSource } from './doctor-parent.js';
import { referencedNames, storedNames } from './mcp-command.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const OAUTH_USAGE = `usage: keyswap oauth login NAME [--config FILE] [--port N] [--no-browser] [--timeout SECONDS]
       keyswap oauth login --mcp URL [--name NAME] [--scopes 'a b'] [--config FILE] [--port N] [--no-browser]
Gets a refresh token for NAME, a secret whose inject type is oauth2_refresh, by the authorization-code flow with
PKCE and a loopback redirect (http://127.0.0.1:PORT/callback; register it with the provider, or any port when it
allows), and stores it in the backend as the secret's refresh_token_secret: the token never passes through the
agent, the terminal or the shell. The authorization server is inject.issuer (RFC 8414 discovery), the provider
preset's, inject.authorization_url, or discovered at the token URL's origin. Prints the URL to open (and opens a
browser when one is there); a callback with a state keyswap did not send is never exchanged. Then keyswap reload.
--mcp URL: a remote MCP server that follows the MCP authorization spec: its protected resource metadata (RFC 9728)
names the authorization server, keyswap registers itself there (RFC 7591, a public client with PKCE), logs in for
that resource (RFC 8707), stores the client id and refresh token, and adds the secret NAME (bound to the server's
host) to the config; the agent's MCP client then sends Authorization: Bearer <its placeholder>.`;

type Refresh = Extract<MinterSpec, { kind: 'oauth2_refresh' }>;

export async function oauthCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, port: { type: 'string' }, 'no-browser': { type: 'boolean', default: false }, timeout: { type: 'string', default: '300' }, mcp: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' } }, allowPositionals: true, strict: true });
  const [verb, name, ...rest] = positionals;
  if (verb !== 'login' || (values.mcp === undefined) === (name === undefined) || rest.length > 0) throw new CliError(OAUTH_USAGE, EXIT.usage);
  const port = values.port === undefined ? 0 : Number(values.port);
  const timeoutS = Number(values.timeout);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port ${values.port}: a port number (0: any free one)`, EXIT.usage);
  if (!Number.isInteger(timeoutS) || timeoutS < 1) throw new CliError(`--timeout ${values.timeout}: whole seconds`, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const loop = { port, timeoutMs: timeoutS * 1000, browser: !values['no-browser'] };
  if (values.mcp !== undefined) return mcpLogin(config, io, values.mcp, values.name ?? null, values.scopes ?? null, loop);
  if (name === undefined) throw new CliError(OAUTH_USAGE, EXIT.usage);
  const { secret, spec } = refreshSecret(config, name);
  const holder = backendOfSecret(config, secret)?.type ?? config.backend.type;
  // Checked before the user is sent anywhere: a refresh token obtained and then not storable would be lost.
  if (holder !== 'file' && holder !== 'bws') throw new CliError(`${config.file}: ${name}'s secrets are in the ${holder} backend, which keyswap cannot write: move them to the file or bws backend to store the refresh token`, EXIT.usage);

  const backend = await openBackends(config, { ...io.env }, () => {});
  const proxySecrets = config.upstream.parent?.credentialsSecret ? backendSource(config, io) : null;
  const upstream = new UpstreamClient(config.upstream, config.upstream.extraCaFile === null ? null : await readFile(config.upstream.extraCaFile, 'utf8'), proxySecrets);
  const transport = tokenTransport(upstream);
  try {
    const client = await Promise.all([spec.clientIdSecret, ...(spec.clientSecretSecret === null ? [] : [spec.clientSecretSecret])].map((n) => backend.fetch(n, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => {
      throw new CliError(`${n} (${name}'s client credentials): ${err.message}; store it first: keyswap secret set ${n}`, EXIT.usage);
    })));
    const [clientId, clientSecret = ''] = client.map((s) => s.reveal()) as [string, string?];
    const server = await loginServer(spec, transport).catch((err: Error) => { throw new CliError(printable(err.message), EXIT.runtime); });
    const refreshToken = await loopbackLogin(io, loop, async (redirectUri) => beginLogin(server, spec, clientId, redirectUri), async (login, params) => (await finishLogin(server, spec, login, clientId, clientSecret, params, transport)).refreshToken, `${name} (${server.found === 'discovered' ? `authorization server ${server.issuer}, discovered` : new URL(server.authorizationEndpoint).host})`);
    await backend.store?.(spec.refreshTokenSecret, new Secret(refreshToken));
    io.stdout.write(`stored a refresh token for ${name} as ${spec.refreshTokenSecret} (${holder} backend); a running keyswap reads it after: keyswap reload\n`);
    return EXIT.ok;
  } finally {
    upstream.close();
    await proxySecrets?.close();
    await backend.close?.();
  }
}

/** `--mcp URL`: discovery, registration and login for a remote MCP server; the secret it makes is added to the config. */
async function mcpLogin(config: Config, io: CliIo, urlText: string, nameGiven: string | null, scopes: string | null, loop: { readonly port: number; readonly timeoutMs: number; readonly browser: boolean }): Promise<number> {
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw new CliError(`--mcp ${urlText}: not a URL; e.g. https://mcp.example.com/mcp`, EXIT.usage);
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.hash !== '') throw new CliError(`--mcp ${urlText}: an https URL without credentials or fragment`, EXIT.usage);
  const name = nameGiven ?? `MCP_${(url.hostname.split('.').find((l) => l !== 'mcp' && l !== 'api') ?? 'SERVER').toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) throw new CliError(`--name ${name}: letters, digits, '_' or '-', starting with a letter`, EXIT.usage);
  if (config.secrets.some((s) => s.name === name)) throw new CliError(`${config.file} already has a secret ${name}; pass --name for another, or log in to it with: keyswap oauth login ${name}`, EXIT.usage);
  const used = new Set([...referencedNames(config), ...(await storedNames(config, io))]);
  const clash = [`${name}_CLIENT_ID`, `${name}_CLIENT_SECRET`, `${name}_REFRESH_TOKEN`].find((n) => used.has(n) || config.secrets.some((s) => s.name === n));
  if (clash !== undefined) throw new CliError(`${config.file} already uses the name ${clash}; pass --name for another`, EXIT.usage);
  if (config.backend.type !== 'file' && config.backend.type !== 'bws') throw new CliError(`${config.file}: the default backend (${config.backend.type}) is one keyswap cannot write; the client id and refresh token go there`, EXIT.usage);
  const backend = await openBackends(config, { ...io.env }, () => {});
  const proxySecrets = config.upstream.parent?.credentialsSecret ? backendSource(config, io) : null;
  const upstream = new UpstreamClient(config.upstream, config.upstream.extraCaFile === null ? null : await readFile(config.upstream.extraCaFile, 'utf8'), proxySecrets);
  const transport = tokenTransport(upstream);
  const names = { id: `${name}_CLIENT_ID`, secret: `${name}_CLIENT_SECRET`, refresh: `${name}_REFRESH_TOKEN` };
  try {
    const server = await mcpLoginServer(url, transport).catch((err: Error) => { throw new CliError(printable(err.message), EXIT.runtime); });
    // Registered once the redirect URI (its port) is known, inside the login; read again after it.
    const reg: { client?: { readonly clientId: string; readonly clientSecret: string | null }; spec?: Refresh } = {};
    const refreshToken = await loopbackLogin(io, loop, async (redirectUri) => {
      const client = await registerClient(server, redirectUri, transport).catch((err: Error) => { throw new CliError(printable(err.message), EXIT.runtime); });
      const spec: Refresh = {
        kind: 'oauth2_refresh', tokenUrl: server.tokenEndpoint, clientAuth: client.clientSecret === null ? 'none' : 'body_post', clientIdSecret: names.id,
        clientSecretSecret: client.clientSecret === null ? null : names.secret, refreshTokenSecret: names.refresh, scopes, safetyMs: 60_000, maxMs: 3_600_000,
        writeBack: true, issuer: server.issuer, authorizationUrl: server.authorizationEndpoint, authorizationParams: {}, resource: url.href,
      };
      reg.client = client;
      reg.spec = spec;
      return beginLogin(server, spec, client.clientId, redirectUri);
    }, async (login, params) => (await finishLogin(server, reg.spec as Refresh, login, reg.client?.clientId ?? '', reg.client?.clientSecret ?? '', params, transport)).refreshToken,
    `the MCP server ${url.href} (authorization server ${server.issuer})`);
    const c = reg.client as { readonly clientId: string; readonly clientSecret: string | null };
    // The store first: a refresh token stored and not yet configured is harmless; the reverse would be lost.
    await backend.store?.(names.id, new Secret(c.clientId));
    if (c.clientSecret !== null) await backend.store?.(names.secret, new Secret(c.clientSecret));
    await backend.store?.(names.refresh, new Secret(refreshToken));
    const placeholder = mintPlaceholder('mcp-');
    const doc = parseDocument(await readFile(config.file, 'utf8'));
    addSecret(doc, {
      name,
      placeholder,
      sites: { type: 'oauth2_refresh', token_url: server.tokenEndpoint, ...(c.clientSecret === null ? { client_auth_method: 'none' } : { client_secret_secret: names.secret }), client_id_secret: names.id, refresh_token_secret: names.refresh, resource: url.href, ...(scopes === null ? {} : { scopes }) },
      bindings: [{ host: url.hostname.toLowerCase(), ...(url.port === '' ? {} : { port: Number(url.port) }), methods: null, paths: null }],
      route: null,
    });
    const text = doc.toString({ lineWidth: 0 });
    // Checked before it replaces the file: what a server's metadata put in it must never leave keyswap unable to start.
    try {
      parseConfig(text, config.file);
    } catch (err) {
      throw new CliError(`the secret ${name} would not load (${err instanceof ConfigErrors ? err.errors.map((e) => printable(e.message)).join('; ') : 'invalid'}); ${config.file} is unchanged; its client id and refresh token are stored as ${names.id}, ${names.refresh}`, EXIT.runtime);
    }
    await writeFileAtomic(config.file, text, ((await stat(config.file)).mode & 0o777) | 0o600, { followOperatorLink: true });
    io.stdout.write(`registered keyswap at ${printable(server.issuer)} and stored its client id and a refresh token (${names.id}, ${names.refresh}); added the secret ${name}, bound to ${url.host}, to ${config.file}.\n` +
      `In the agent's MCP client, give this server the header  Authorization: Bearer ${placeholder}  and run the client behind keyswap; then: keyswap reload\n`);
    return EXIT.ok;
  } finally {
    upstream.close();
    await proxySecrets?.close();
    await backend.close?.();
  }
}

function refreshSecret(config: Config, name: string): { secret: SecretSpec; spec: Refresh } {
  const secret = config.secrets.find((s) => s.name === name);
  if (secret === undefined) throw new CliError(`${config.file}: no secret named ${name} (secrets: ${config.secrets.map((s) => s.name).join(', ') || 'none'})`, EXIT.usage);
  const site = secret.sites.find((s) => s.render.kind === 'minted' && s.render.minter.kind === 'oauth2_refresh');
  if (site === undefined || site.render.kind !== 'minted' || site.render.minter.kind !== 'oauth2_refresh') throw new CliError(`${config.file}: ${name} is not an oauth2_refresh secret (inject: { type: oauth2_refresh, … }): only those take a refresh token`, EXIT.usage);
  return { secret, spec: site.render.minter };
}

/**
 * The loopback half of RFC 8252: a server on 127.0.0.1 for one callback. A callback whose state keyswap did not send
 * is answered 400 and waited past (a page that guessed the port cannot end the login); the server's refusal ends it.
 */
async function loopbackLogin<L>(io: CliIo, o: { readonly port: number; readonly timeoutMs: number; readonly browser: boolean }, begin: (redirectUri: string) => Promise<L & { readonly url: URL }>, finish: (login: L, params: URLSearchParams) => Promise<string>, what: string): Promise<string> {
  let login: (L & { readonly url: URL }) | null = null;
  let busy = false;
  let settle: { resolve: (token: string) => void; reject: (err: Error) => void } | null = null;
  const done = new Promise<string>((resolve, reject) => { settle = { resolve, reject }; });
  // Settled (a timeout) before anyone awaits it, it must not crash the process as an unhandled rejection.
  done.catch(() => {});
  const answer = (res: http.ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end(`${text}\n`);
  };
  const uid = process.getuid?.() ?? null;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback' || login === null) return answer(res, 404, 'keyswap: not found');
    if (busy) return answer(res, 409, 'keyswap: a callback is being handled');
    busy = true;
    const current = login;
    // The browser that completes a login is this user's: a callback from another local user's socket (one who read
    // the authorization URL somewhere) is not exchanged, whatever its state.
    const owner = uid === null ? Promise.resolve(null) : peerUid({ address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0, listenAddress: req.socket.localAddress ?? '', listenPort: req.socket.localPort ?? 0, redirectedFrom: null });
    owner.then((who) => {
      if (uid !== null && who !== uid) throw new LoginError('another user');
      return finish(current, url.searchParams);
    }).then(
      (token) => {
        answer(res, 200, 'keyswap has the refresh token; you can close this page.');
        settle?.resolve(token);
      },
      (err: Error) => {
        busy = false;
        if (err instanceof LoginError && err.message === 'state') {
          io.stderr.write('keyswap: a callback came with a state keyswap did not send; ignored (still waiting)\n');
          return answer(res, 400, 'keyswap: this is not the login keyswap started (state does not match); ignored');
        }
        if (err instanceof LoginError && err.message === 'another user') {
          io.stderr.write('keyswap: a callback came from another user\'s process; ignored (still waiting)\n');
          return answer(res, 403, 'keyswap: this callback does not come from the user who started the login; ignored');
        }
        answer(res, 400, `keyswap: ${printable(err.message)}`);
        settle?.reject(new CliError(printable(err.message), EXIT.runtime));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new CliError(`cannot listen on 127.0.0.1:${o.port} for the callback (${err.code ?? 'error'})`, EXIT.runtime)));
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  const timer = setTimeout(() => settle?.reject(new CliError(`no callback within ${o.timeoutMs / 1000} s; run keyswap oauth login again`, EXIT.runtime)), o.timeoutMs);
  try {
    login = await Promise.race([begin(`http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`), done.then(() => { throw new Error('unreachable'); })]);
    io.stdout.write(`Open this URL to authorize keyswap for ${printable(what)}:\n\n  ${login.url.href}\n\nwaiting for the callback on http://127.0.0.1:${(server.address() as AddressInfo).port}/callback …\n`);
    if (o.browser) await openBrowser(io, login.url.href);
    return await done;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}

/**
 * $BROWSER, else xdg-open, only where a desktop session is: a headless machine gets the printed URL alone. The
 * browser is given a 0600 page in a 0700 directory that redirects to the URL, never the URL itself: a command line is
 * readable by every local user (/proc/PID/cmdline), and the URL carries the state and the PKCE challenge.
 */
async function openBrowser(io: CliIo, url: string): Promise<void> {
  const cmd = io.env.BROWSER ?? (io.env.DISPLAY || io.env.WAYLAND_DISPLAY ? 'xdg-open' : null);
  if (cmd === null || cmd === undefined) return;
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keyswap-login-'));
    const page = path.join(dir, 'login.html');
    const href = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    await writeFile(page, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${href}"><title>keyswap login</title><a href="${href}">continue to the authorization server</a>\n`, { mode: 0o600 });
    const child = spawn(cmd, [`file://${page}`], { detached: true, stdio: 'ignore' });
    child.on('error', () => {});
    child.unref();
    // The browser has read it by then; the directory goes with the login either way.
    setTimeout(() => { void rm(dir, { recursive: true, force: true }); }, 60_000).unref();
  } catch {
    // No browser after all: the URL is printed.
  }
}

/** Text a server chose, made safe for a terminal: no control characters (escape sequences, bells). */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
