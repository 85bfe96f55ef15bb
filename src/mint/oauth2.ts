import { createPrivateKey } from 'node:crypto';
import type * as Oauth from 'oauth4webapi';
import type { MinterSpec } from '../config/index.js';
import { checkCredentialText, MintFailed } from './failure.js';
import { loadJose, loadOauth } from './libraries.js';
import { TransportError, type TokenTransport } from './transport.js';

export interface Grant { readonly accessToken: string; readonly expiresInS: number | null }

type ClientCredentials = Extract<MinterSpec, { kind: 'oauth2_client_credentials' }>;
type Refresh = Extract<MinterSpec, { kind: 'oauth2_refresh' }>;

/** RFC 6749 §6: a refresh token exchanged for an access token, and the new refresh token when the provider rotates it. */
export async function refreshTokenGrant(spec: Refresh, clientId: string, clientSecret: string, refreshToken: string, transport: TokenTransport): Promise<Grant & { readonly refreshToken: string | null }> {
  const oauth = await loadOauth();
  const as: Oauth.AuthorizationServer = { issuer: new URL(spec.tokenUrl).origin, token_endpoint: spec.tokenUrl };
  const client: Oauth.Client = { client_id: clientId };
  const auth = clientAuthOf(oauth, spec.clientAuth, clientSecret);
  const seen = { status: null as number | null };
  try {
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, {
      [oauth.customFetch]: fetchVia(transport, seen),
      ...(spec.scopes === null && spec.resource === null ? {} : { additionalParameters: { ...(spec.scopes === null ? {} : { scope: spec.scopes }), ...(spec.resource === null ? {} : { resource: spec.resource }) } }),
    });
    const result = await oauth.processRefreshTokenResponse(as, client, response);
    return {
      accessToken: checkCredentialText(result.access_token),
      expiresInS: typeof result.expires_in === 'number' ? result.expires_in : null,
      refreshToken: result.refresh_token === undefined ? null : checkCredentialText(result.refresh_token),
    };
  } catch (err) {
    throw asMintFailed(err, seen.status, oauth);
  }
}

/** RFC 6749 §4.4 with oauth4webapi: the request, client authentication and response checks are its, the wire ours. */
export async function clientCredentialsGrant(spec: ClientCredentials, clientId: string, clientSecret: string, transport: TokenTransport): Promise<Grant> {
  const oauth = await loadOauth();
  const as: Oauth.AuthorizationServer = { issuer: new URL(spec.tokenUrl).origin, token_endpoint: spec.tokenUrl };
  const client: Oauth.Client = { client_id: clientId };
  const auth = spec.clientAuth === 'basic' ? oauth.ClientSecretBasic(clientSecret) : oauth.ClientSecretPost(clientSecret);
  const seen = { status: null as number | null };
  try {
    const response = await oauth.clientCredentialsGrantRequest(as, client, auth, spec.scopes === null ? {} : { scope: spec.scopes }, { [oauth.customFetch]: fetchVia(transport, seen) });
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    return { accessToken: checkCredentialText(result.access_token), expiresInS: typeof result.expires_in === 'number' ? result.expires_in : null };
  } catch (err) {
    throw asMintFailed(err, seen.status, oauth);
  }
}

type ServiceAccount = Extract<MinterSpec, { kind: 'google_service_account' }>;

/**
 * RFC 7523 §2.1 for a Google service account: an RS256 assertion (jose) from the key file's client_email,
 * private_key and private_key_id, for the configured scopes and token endpoint, exchanged with oauth4webapi.
 */
export async function serviceAccountGrant(spec: ServiceAccount, keyFile: string, transport: TokenTransport, nowMs: number): Promise<Grant> {
  let email: string;
  let keyId: string | undefined;
  let key;
  try {
    const parsed = JSON.parse(keyFile) as { client_email?: unknown; private_key?: unknown; private_key_id?: unknown };
    if (typeof parsed.client_email !== 'string' || typeof parsed.private_key !== 'string') throw new Error('not a service account key');
    email = parsed.client_email;
    keyId = typeof parsed.private_key_id === 'string' ? parsed.private_key_id : undefined;
    key = createPrivateKey(parsed.private_key);
  } catch (err) {
    throw new MintFailed('bad_key', null, { cause: err });
  }
  const [{ SignJWT }, oauth] = await Promise.all([loadJose(), loadOauth()]);
  const iat = Math.floor(nowMs / 1000);
  let assertion = new SignJWT({ scope: spec.scopes }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(keyId === undefined ? {} : { kid: keyId }) })
    .setIssuer(email).setAudience(spec.tokenUrl).setIssuedAt(iat).setExpirationTime(iat + 3600);
  if (spec.subject !== null) assertion = assertion.setSubject(spec.subject);
  const as: Oauth.AuthorizationServer = { issuer: new URL(spec.tokenUrl).origin, token_endpoint: spec.tokenUrl };
  const client: Oauth.Client = { client_id: email };
  const seen = { status: null as number | null };
  try {
    const response = await oauth.genericTokenEndpointRequest(as, client, oauth.None(), 'urn:ietf:params:oauth:grant-type:jwt-bearer', { assertion: await assertion.sign(key) }, { [oauth.customFetch]: fetchVia(transport, seen) });
    const result = await oauth.processGenericTokenEndpointResponse(as, client, response);
    return { accessToken: checkCredentialText(result.access_token), expiresInS: typeof result.expires_in === 'number' ? result.expires_in : null };
  } catch (err) {
    throw asMintFailed(err, seen.status, oauth);
  }
}

/** How a client proves itself at the token endpoint: its secret (in the body or Basic), or nothing but PKCE (public). */
export function clientAuthOf(oauth: typeof Oauth, method: 'body_post' | 'basic' | 'none', clientSecret: string): Oauth.ClientAuth {
  return method === 'none' ? oauth.None() : method === 'basic' ? oauth.ClientSecretBasic(clientSecret) : oauth.ClientSecretPost(clientSecret);
}

/** oauth4webapi's fetch, answered by keyswap's transport: the URL is the configured one, never one from a response. */
export function fetchVia(transport: TokenTransport, seen: { status: number | null }): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const body = init?.body === undefined || init.body === null ? null : String(init.body);
    const r = await transport.send(url, { method: (init?.method ?? 'GET') === 'POST' ? 'POST' : 'GET', headers, body });
    seen.status = r.status;
    return new Response(r.status === 204 || r.status === 304 ? null : new Uint8Array(r.body), { status: r.status, headers: r.headers });
  }) as typeof fetch;
}

export function asMintFailed(err: unknown, status: number | null, oauth: typeof Oauth): MintFailed {
  if (err instanceof MintFailed) return err;
  if (err instanceof TransportError) return new MintFailed(err.reason, null, { cause: err });
  if (err instanceof oauth.ResponseBodyError) return new MintFailed(err.error === 'invalid_grant' ? 'invalid_grant' : 'oauth_error', err.status, { cause: err });
  if (status !== null && (status < 200 || status > 299)) return new MintFailed('http_status', status, { cause: err });
  return new MintFailed('bad_response', status, { cause: err });
}
