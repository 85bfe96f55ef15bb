import { randomBytes, type KeyObject } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';

/**
 * Stand-ins for the authorities keyswap mints credentials from, on one HTTPS port: an OAuth2 token endpoint
 * (`POST /oauth2/token`, client credentials, with Basic or body client authentication) and GitHub's installation
 * token endpoint (`POST /app/installations/:id/access_tokens`, which verifies the App JWT with the App's public
 * key). Each counts its calls and remembers every credential it issued, so a test can tell an issued credential
 * from anything else.
 */
export interface FakeAuthorities {
  readonly port: number;
  /** Every call, in order: which endpoint, and how the client authenticated. */
  readonly calls: { readonly endpoint: 'oauth2' | 'github'; readonly clientId: string | null; readonly auth: 'basic' | 'body' | 'jwt' | 'none' }[];
  readonly issued: Set<string>;
  /** The next answers of the token endpoint: a status and body to send instead of a token, consumed in order. */
  readonly failNext: { status: number; body: string }[];
  close(): Promise<void>;
}

export interface AuthorityOptions {
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  readonly clients: Readonly<Record<string, string>>;
  readonly expiresInS?: number;
  readonly github?: { readonly appId: string; readonly installationId: string; readonly publicKey: KeyObject };
  /**
   * The refresh-token grant: the refresh token each client holds now. With `rotate`, every exchange issues a new
   * one and revokes the one used, as Microsoft, Slack and Atlassian do.
   */
  readonly refresh?: { readonly tokens: Map<string, string>; readonly rotate: boolean };
  /** RFC 7523 (Google service accounts): assertions signed by this account's key, for this audience. */
  readonly serviceAccount?: { readonly email: string; readonly publicKey: KeyObject; readonly audience: string };
  /** Milliseconds each answer waits: lets concurrent first requests pile up on one exchange. */
  readonly delayMs?: number;
}

export async function startFakeAuthorities(o: AuthorityOptions): Promise<FakeAuthorities> {
  const calls: FakeAuthorities['calls'] = [];
  const issued = new Set<string>();
  const failNext: FakeAuthorities['failNext'] = [];
  const server = https.createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const send = (status: number, json: unknown): void => {
        setTimeout(() => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(typeof json === 'string' ? json : JSON.stringify(json));
        }, o.delayMs ?? 0);
      };
      void (async () => {
        if (req.method === 'POST' && req.url === '/oauth2/token') {
          const form = new URLSearchParams(body);
          const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
          const [id, secret] = basic ? decodeBasic(basic[1] ?? '') : [form.get('client_id'), form.get('client_secret')];
          calls.push({ endpoint: 'oauth2', clientId: id ?? null, auth: basic ? 'basic' : form.has('client_secret') ? 'body' : 'none' });
          const fail = failNext.shift();
          if (fail !== undefined) return send(fail.status, fail.body);
          if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' && o.serviceAccount) {
            try {
              const { payload } = await jwtVerify(form.get('assertion') ?? '', o.serviceAccount.publicKey, { issuer: o.serviceAccount.email, audience: o.serviceAccount.audience, algorithms: ['RS256'] });
              if (typeof payload.scope !== 'string' || payload.scope === '') return send(400, { error: 'invalid_scope' });
            } catch {
              return send(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
            }
            const token = `ya29.${randomBytes(20).toString('hex')}`;
            issued.add(token);
            return send(200, { access_token: token, token_type: 'Bearer', expires_in: 3599 });
          }
          if (id === null || id === undefined || o.clients[id] !== secret) return send(401, { error: 'invalid_client' });
          const token = `at-${calls.length}-${randomBytes(12).toString('hex')}`;
          const grant = form.get('grant_type');
          if (grant === 'refresh_token' && o.refresh) {
            if (form.get('refresh_token') !== o.refresh.tokens.get(id)) return send(400, { error: 'invalid_grant', error_description: 'refresh token revoked' });
            issued.add(token);
            if (!o.refresh.rotate) return send(200, { access_token: token, token_type: 'Bearer', expires_in: o.expiresInS ?? 3600 });
            const next = `rt-${calls.length}-${randomBytes(12).toString('hex')}`;
            o.refresh.tokens.set(id, next);
            issued.add(next);
            return send(200, { access_token: token, token_type: 'Bearer', expires_in: o.expiresInS ?? 3600, refresh_token: next });
          }
          if (grant !== 'client_credentials') return send(400, { error: 'unsupported_grant_type' });
          issued.add(token);
          return send(200, { access_token: token, token_type: 'Bearer', expires_in: o.expiresInS ?? 3600, scope: form.get('scope') ?? '' });
        }
        const gh = /^\/app\/installations\/([0-9]+)\/access_tokens$/.exec(req.url ?? '');
        if (req.method === 'POST' && gh && o.github) {
          calls.push({ endpoint: 'github', clientId: null, auth: 'jwt' });
          const jwt = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
          try {
            await jwtVerify(jwt, o.github.publicKey, { issuer: o.github.appId, algorithms: ['RS256'] });
          } catch {
            return send(401, { message: 'A JSON web token could not be decoded' });
          }
          if (gh[1] !== o.github.installationId) return send(404, { message: 'Not Found' });
          const token = `ghs_${randomBytes(18).toString('hex')}`;
          issued.add(token);
          return send(201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { contents: 'read' } });
        }
        send(404, { error: 'not_found' });
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    calls,
    issued,
    failNext,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function decodeBasic(b64: string): [string, string] {
  const text = Buffer.from(b64, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  // RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
  return [decodeURIComponent(text.slice(0, colon).replace(/\+/g, ' ')), decodeURIComponent(text.slice(colon + 1).replace(/\+/g, ' '))];
}
