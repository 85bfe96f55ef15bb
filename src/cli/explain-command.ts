import path from 'node:path';
import { parseArgs } from 'node:util';
import { clientPolicy, describeClientPolicy, loadConfig, minterEndpoint, type ClientSpec, type Config, type InjectSpec, type SecretSpec } from '../config/index.js';
import { compilePolicy, decide, isBoundDestination, mcpToolRules, type DeclineReason, type RequestFacts } from '../policy/index.js';
import { Dialer, routeConnect, type ConnectRoute } from '../proxy/index.js';
import type { ExplainQuery } from '../control/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const EXPLAIN_USAGE = `usage: keyswap explain METHOD URL [-H 'Name: value']… [--client NAME] [--config FILE]

Prints the decision keyswap would take for this request (the connection, each placeholder's binding and site,
or the reason it stays a placeholder), with no network and no secret fetched. URL may be a base-URL route:
http://127.0.0.1:14322/p/<route>/…`;

const WHY: Record<DeclineReason, string> = {
  client_not_allowed: 'this client is not allowed this secret (clients: … secrets:)',
  destination_not_in_binding: 'no binding of this secret names this host and port',
  binding_scope_violation: "a binding names this host, but not this method or path (its methods:/paths:)",
  site_violation: 'the placeholder is not where this secret is injected (its inject: site)',
  plaintext_not_allowed: 'plain http, and no binding says allow_plaintext: true',
};

function site(s: SecretSpec): string {
  return s.sites.map(describeSite).join(' or ');
}

function describeSite(i: InjectSpec): string {
  const where = i.type === 'header' ? `header ${i.header}` : i.type === 'query' ? `query parameter ${i.param}` : i.type === 'basic' ? 'Basic credentials' : i.type === 'path' ? 'a path segment' : i.type === 'websocket_message' ? 'text messages on the WebSocket' : 'the body';
  const r = i.render;
  if (r.kind === 'minted') {
    const endpoint = minterEndpoint(r.minter);
    return `${where} (${r.minter.kind}: ${endpoint === null ? 'signed by keyswap' : `minted at ${endpoint.host}, cached until shortly before it expires`})`;
  }
  if (r.kind === 'signed') return `${where} (${r.signer.kind}: a signature${r.signer.kind === 'sigv4' ? ` for ${r.signer.service ?? 'the service'} in ${r.signer.region ?? 'the region'}${r.signer.service === null || r.signer.region === null ? ' the client’s own signature names' : ''}` : ''} over the request as sent)`;
  return where;
}

export async function explainCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', default: 'keyswap.yaml' }, header: { type: 'string', short: 'H', multiple: true }, client: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  const [methodText, urlText, ...rest] = positionals;
  if (methodText === undefined || urlText === undefined || rest.length > 0) throw new CliError(`expected METHOD URL\n${EXPLAIN_USAGE}`, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw new CliError(`'${urlText}' is not a URL; e.g. https://api.openai.com/v1/models`, EXIT.usage);
  }
  const headers = (values.header ?? []).map((h): [string, string] => {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new CliError(`-H '${h}': expected 'Name: value'`, EXIT.usage);
    return [h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim()];
  });
  const client = values.client === undefined ? null : config.clients?.get(values.client) ?? null;
  if (values.client !== undefined && client === null) throw new CliError(`--client ${values.client}: no such client in ${config.file}`, EXIT.usage);
  io.stdout.write(`${explainRequest(config, methodText, url, headers, client).join('\n')}\n`);
  return EXIT.ok;
}

/**
 * The decision keyswap would take for this request, in lines for a person (the CLI, the console): no network, no
 * secret fetched, and never a value or a placeholder in the answer.
 */
export function explainRequest(config: Config, methodText: string, url: URL, headers: readonly [string, string][], client: ClientSpec | null): string[] {

  const method = methodText.toUpperCase();
  const out: string[] = [`${method} ${url.href}`];
  // The proxy authenticates before anything else: without a client it may accept, nothing below applies.
  const policy = clientPolicy(config.clients);
  if (client === null && policy.kind !== 'open') {
    return [...out, policy.kind === 'closed' ? `refused: ${describeClientPolicy(policy)} → 407` : `refused: a client is required: ${describeClientPolicy(policy)}; explain what one gets with --client NAME → 407`];
  }
  // wss:// is a WebSocket handshake over the same CONNECT and TLS as https:// (ws:// is not served).
  const isWebSocket = url.protocol === 'wss:' || url.protocol === 'ws:';
  if (url.protocol === 'ws:') return [...out, 'refused: plain ws:// upgrades are not served (501); use wss://'];
  if (isWebSocket && method !== 'GET') return [...out, 'refused: a WebSocket handshake is a GET (400)'];
  let scheme: 'https' | 'http' = url.protocol === 'https:' || url.protocol === 'wss:' ? 'https' : 'http';
  let host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  let port = url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port);
  let reqPath = url.pathname;
  const route = scheme === 'http' && ['127.0.0.1', 'localhost', '::1'].includes(host) ? /^\/p\/([^/]+)(\/.*)?$/.exec(url.pathname) : null;
  if (route) {
    const r = config.routes.get(route[1] as string);
    if (r === undefined) return [...out, `refused: no route '${route[1]}' (routes: in ${config.file}) → 404`];
    out.push(`base-URL route ${r.name} → https://${r.host}${r.port === 443 ? '' : `:${r.port}`}`);
    scheme = 'https';
    host = r.host;
    port = r.port;
    reqPath = route[2] ?? '/';
    out.push(...parentLine(config, host));
  } else {
    out.push(connection(config, scheme, host, port));
    const kind = scheme === 'https' ? connectRoute(config, host, port).kind : 'mitm';
    if (kind === 'mitm' || kind === 'tunnel') out.push(...parentLine(config, host));
    if (kind !== 'mitm') return out;
  }
  const authority = port === (scheme === 'https' ? 443 : 80) ? host : `${host}:${port}`;
  const hostHeader = headers.find(([n]) => n === 'host')?.[1] ?? authority;
  const facts: RequestFacts = {
    scheme, connectHost: host, connectPort: port, sni: scheme === 'https' ? host : null, hostHeader, method,
    path: reqPath, query: url.search.slice(1), headers: [['host', hostHeader], ...headers.filter(([n]) => n !== 'host')],
    contentType: headers.find(([n]) => n === 'content-type')?.[1]?.split(';')[0]?.trim().toLowerCase() ?? null, client,
    isWebSocket,
  };
  const compiled = compilePolicy(config);
  const verdict = decide(facts, compiled);
  if (verdict.kind === 'deny') return [...out, `refused: ${verdict.reason}; nothing is sent upstream`];
  const tools = mcpToolRules(compiled, host, port, scheme).map((r) => r.tools);
  if (tools.length > 0) {
    out.push(isWebSocket
      ? 'MCP tool policy here: a WebSocket is refused (mcp_body_unreadable), its messages are not read as JSON-RPC'
      : `MCP tool policy here (every path and method): the body must be readable JSON-RPC, and tools/call may name only ${tools.map((t) => `[${t.join(', ')}]`).join(' and ')}; any other call is answered with a JSON-RPC error and nothing sent; tools/list answers hide the others`);
  }
  for (const inj of verdict.injections) {
    const b = inj.secret.bindings[inj.bindingIndex];
    out.push(`${inj.secret.name}: injected at ${inj.sites.map(describeSite).join(' and ')}; binding ${b ? `${path.basename(b.source.file)}:${b.source.line}` : '?'} (${b?.host}, methods ${b?.methods?.join(' ') ?? 'any'}, paths ${b?.paths?.join(' ') ?? 'any'}); audited before it is sent`);
  }
  for (const d of verdict.declined) out.push(`${d.secret.name}: placeholder kept (${d.reason}): ${WHY[d.reason]}${d.reason === 'site_violation' ? ` (${site(d.secret)})` : ''}; audited`);
  for (const b of verdict.bodyInjectors) {
    out.push(isWebSocket
      ? `${b.secret.name}: its placeholder would be replaced in each text message the agent sends, each audited before it leaves`
      : `${b.secret.name}: a body placeholder would be replaced as the body streams (${site(b.secret)})`);
  }
  if (isWebSocket) out.push('WebSocket: messages are relayed both ways; upstream messages are scrubbed of every secret bound here (response_scrub: block closes with 1008)');
  if (verdict.injections.length === 0 && verdict.declined.length === 0) out.push('no placeholder in the request: forwarded as sent');
  return out;
}

/** How the upstream connection is made when `upstream.proxy` is set: through it, or directly (no_proxy). */
function parentLine(config: Config, host: string): string[] {
  const parent = config.upstream.parent;
  if (parent === null) return [];
  const via = new Dialer(config.upstream, null).parentFor(host);
  return [via === null
    ? `upstream: dialled directly (upstream.no_proxy names ${host})`
    : `upstream: dialled through the parent proxy ${parent.host}:${parent.port} with CONNECT${parent.credentialsSecret === null ? '' : ` (credentials: secret ${parent.credentialsSecret})`}; TLS to ${host} is verified inside it`];
}

/** Where the proxy would send a CONNECT for host:port: the proxy's own answer (proxy/connect-route.ts). */
function connectRoute(config: Config, host: string, port: number): ConnectRoute {
  return routeConnect(`${host.includes(':') ? `[${host}]` : host}:${port}`, compilePolicy(config));
}

function connection(config: Config, scheme: 'https' | 'http', host: string, port: number): string {
  if (scheme === 'http') return `connection: plain http to ${host}:${port} (a secret goes only where a binding says allow_plaintext: true)`;
  const route = connectRoute(config, host, port);
  if (route.kind === 'mitm') return `connection: CONNECT ${host}:${port}, decrypted (${isBoundDestination(compilePolicy(config), host, port, 'https') ? 'a binding names this host' : 'tls_termination: all'})`;
  if (route.kind === 'deny') return `connection: CONNECT ${host}:${port} refused (403): no binding names it and unmatched_destination_policy is deny`;
  if (route.kind === 'bad_target') return `connection: CONNECT ${host}:${port} refused (400): not a host name keyswap accepts`;
  return `connection: CONNECT ${host}:${port}, an opaque tunnel: never decrypted, no secret can be injected`;
}

/** `keyswap explain` for the control API: the URL's query is shown masked (a placeholder may sit in it). */
export function explainForOperator(config: Config, q: ExplainQuery): readonly string[] {
  let url: URL;
  try {
    url = new URL(q.url);
  } catch {
    return [`'${q.url.slice(0, 200)}' is not a URL; e.g. https://api.openai.com/v1/models`];
  }
  const client = q.client === null ? null : config.clients?.get(q.client) ?? null;
  if (q.client !== null && client === null) return [`no client ${q.client} in the running configuration`];
  const headers: [string, string][] = q.headers.map(([n, v]) => [n.trim().toLowerCase(), v.trim()]);
  // "As if it carried SECRET's placeholder": the console never holds a placeholder, so keyswap places it here.
  if (q.secret !== null) {
    const spec = config.secrets.find((s) => s.name === q.secret);
    if (spec === undefined) return [`no secret ${q.secret} in the running configuration`];
    const site = spec.sites[0];
    if (site.type === 'header') headers.push([site.header, site.render.kind === 'format' ? site.render.format.replaceAll(`{${spec.name}}`, spec.placeholder).replaceAll('{secret}', spec.placeholder) : spec.placeholder]);
    else if (site.type === 'query') url.searchParams.set(site.param, spec.placeholder);
    else if (site.type === 'basic') headers.push(['authorization', `Basic ${Buffer.from(`${site.username ?? 'user'}:${spec.placeholder}`).toString('base64')}`]);
    else if (site.type === 'path') url.pathname = `${url.pathname.replace(/\/$/, '')}/${spec.placeholder}`;
  }
  const lines = explainRequest(config, q.method, url, headers, client);
  const shown = `${url.origin}${q.secret !== null ? new URL(q.url).pathname : url.pathname}${url.search === '' ? '' : '?…'}`;
  // Whatever a line quotes of the request (a route's name, a path) shows a placeholder by its secret's name.
  const masked = (line: string): string => config.secrets.reduce((l, s) => l.replaceAll(s.placeholder, `{${s.name}}`), line);
  return lines.map((l, i) => masked(i === 0 ? `${q.method.toUpperCase()} ${shown}` : l));
}
