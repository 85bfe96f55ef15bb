import { createHash, randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in OAuth 2.0 authorization server on loopback HTTPS, strict where a real one is: RFC 8414 metadata; an
 * authorization endpoint that accepts only a known client, a loopback redirect (RFC 8252: http://127.0.0.1, any
 * port, /callback) and PKCE S256, answering with a redirect that carries the code and the state; a token endpoint
 * that checks client authentication, the code (once), the redirect URI and the PKCE verifier, and rotates refresh
 * tokens, refusing a used one.
 */
export interface AuthorizationServer {
  readonly port: number;
  readonly issuer: string;
  /** Every token-endpoint call: its grant type and outcome. */
  readonly calls: { readonly grant: string; readonly ok: boolean; readonly why: string | null }[];
  /** Every refresh and access token issued. */
  readonly issued: Set<string>;
  /** The refresh token that is valid now, per client. */
  readonly current: Map<string, string>;
  /** The bearer each request to the MCP resource carried. */
  readonly mcpCalls: readonly string[];
  /** Clients registered dynamically, and their redirect URIs. */
  readonly registered: ReadonlyMap<string, readonly string[]>;
  close(): Promise<void>;
}

/**
 * `mcp`: also an MCP server's protected resource (RFC 9728) on another name of the same server, whose `/mcp`
 * answers only a bearer token this server issued for it, and dynamic client registration (RFC 7591) of public
 * clients, which must then name that resource (RFC 8707) when they ask for a code and a token.
 */
export async function startAuthorizationServer(o: { readonly tls: { readonly certPem: string; readonly keyPem: string }; readonly host: string; readonly clients: Readonly<Record<string, string>>; readonly mcp?: { readonly host: string } }): Promise<AuthorizationServer> {
  const issuer = `https://${o.host}`;
  const resource = o.mcp === undefined ? null : `https://${o.mcp.host}/mcp`;
  const registered = new Map<string, readonly string[]>();
  const accessTokens = new Set<string>();
  const mcpCalls: string[] = [];
  const codes = new Map<string, { clientId: string; redirectUri: string; challenge: string }>();
  const calls: AuthorizationServer['calls'] = [];
  const issued = new Set<string>();
  const current = new Map<string, string>();
  const token = (prefix: string): string => {
    const t = `${prefix}-${randomBytes(16).toString('hex')}`;
    issued.add(t);
    return t;
  };
  const server = https.createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
      res.end(JSON.stringify(body));
    };
    if (o.mcp !== undefined && req.headers.host === o.mcp.host) {
      if (req.method === 'GET' && url.pathname === '/.well-known/oauth-protected-resource/mcp') return json(200, { resource, authorization_servers: [issuer], bearer_methods_supported: ['header'] });
      if (url.pathname === '/mcp') {
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
        mcpCalls.push(bearer);
        if (!accessTokens.has(bearer)) return json(401, { error: 'invalid_token' }, { 'www-authenticate': `Bearer resource_metadata="https://${o.mcp.host}/.well-known/oauth-protected-resource/mcp"` });
        return json(200, { jsonrpc: '2.0', id: 1, result: { tools: [] } });
      }
      return json(404, { error: 'not_found' });
    }
    if (req.method === 'POST' && url.pathname === '/register' && resource !== null) {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        const meta = JSON.parse(body) as { redirect_uris?: string[]; token_endpoint_auth_method?: string };
        const uris = meta.redirect_uris ?? [];
        if (uris.length === 0 || !uris.every((u) => /^http:\/\/127\.0\.0\.1:\d{1,5}\/callback$/.test(u)) || meta.token_endpoint_auth_method !== 'none') return json(400, { error: 'invalid_client_metadata' });
        const id = `dcr-${randomBytes(8).toString('hex')}`;
        registered.set(id, uris);
        json(201, { client_id: id, redirect_uris: uris, token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
      });
      return undefined;
    }
    if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
      return json(200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, ...(resource === null ? {} : { registration_endpoint: `${issuer}/register` }), response_types_supported: ['code'], grant_types_supported: ['authorization_code', 'refresh_token'], code_challenge_methods_supported: ['S256'], token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'] });
    }
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      const redirect = q.get('redirect_uri') ?? '';
      const loopback = /^http:\/\/127\.0\.0\.1:\d{1,5}\/callback$/.test(redirect);
      const dcr = registered.get(q.get('client_id') ?? '');
      if (q.get('response_type') !== 'code' || (!Object.hasOwn(o.clients, q.get('client_id') ?? '') && dcr === undefined) || !loopback || (dcr !== undefined && !dcr.includes(redirect))) return json(400, { error: 'invalid_request' });
      if (dcr !== undefined && q.get('resource') !== resource) return json(400, { error: 'invalid_target' });
      if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? '') || (q.get('state') ?? '') === '') return json(400, { error: 'invalid_request', error_description: 'PKCE S256 and state required' });
      const code = randomBytes(16).toString('hex');
      codes.set(code, { clientId: q.get('client_id') as string, redirectUri: redirect, challenge: q.get('code_challenge') as string });
      res.writeHead(302, { location: `${redirect}?code=${code}&state=${encodeURIComponent(q.get('state') as string)}&iss=${encodeURIComponent(issuer)}` });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
        const [id, secret] = basic ? Buffer.from(basic[1] as string, 'base64').toString().split(':').map(decodeURIComponent) : [form.get('client_id'), form.get('client_secret')];
        const grant = form.get('grant_type') ?? '';
        const fail = (why: string, status = 400): void => { calls.push({ grant, ok: false, why }); json(status, { error: why === 'client' ? 'invalid_client' : 'invalid_grant', error_description: why }); };
        const isPublic = id !== null && id !== undefined && registered.has(id) && (secret === null || secret === undefined);
        if (id === null || id === undefined || (!isPublic && o.clients[id] !== secret)) return fail('client', 401);
        if (isPublic && form.get('resource') !== resource) return fail('resource');
        if (grant === 'authorization_code') {
          const c = codes.get(form.get('code') ?? '');
          codes.delete(form.get('code') ?? '');
          if (c === undefined || c.clientId !== id) return fail('code');
          if (form.get('redirect_uri') !== c.redirectUri) return fail('redirect_uri');
          const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
          if (challenge !== c.challenge) return fail('pkce');
          const refresh = token('rt');
          current.set(id, refresh);
          calls.push({ grant, ok: true, why: null });
          const at = token('at');
          accessTokens.add(at);
          return json(200, { access_token: at, token_type: 'Bearer', expires_in: 3600, refresh_token: refresh });
        }
        if (grant === 'refresh_token') {
          if (form.get('refresh_token') !== current.get(id)) return fail('refresh_token');
          const refresh = token('rt');
          current.set(id, refresh);
          calls.push({ grant, ok: true, why: null });
          const at = token('at');
          accessTokens.add(at);
          return json(200, { access_token: at, token_type: 'Bearer', expires_in: 3600, refresh_token: refresh });
        }
        return fail('grant_type');
      });
      return undefined;
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    issuer,
    calls,
    issued,
    current,
    mcpCalls,
    registered,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
