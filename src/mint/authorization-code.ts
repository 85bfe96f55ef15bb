import type * as Oauth from 'oauth4webapi';
import type { MinterSpec } from '../config/index.js';
import { checkCredentialText, MintFailed } from './failure.js';
import { loadOauth } from './libraries.js';
import { asMintFailed, clientAuthOf, fetchVia } from './oauth2.js';
import type { TokenTransport } from './transport.js';

type Refresh = Extract<MinterSpec, { kind: 'oauth2_refresh' }>;

/** Where a login goes: the authorization server's endpoints, as configured or discovered. */
export interface LoginServer {
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  /** How the endpoints were found, for the operator. */
  readonly found: 'discovered' | 'configured';
}

export class LoginError extends Error {
  override readonly name = 'LoginError';
}

/**
 * The authorization server of an `oauth2_refresh` secret: `inject.issuer` by RFC 8414 discovery (its metadata must
 * name that issuer), else a configured or preset authorization endpoint, else discovery at the token URL's origin.
 * The token endpoint used is always the configured one: discovery never moves where the client secret goes.
 */
export async function loginServer(spec: Refresh, transport: TokenTransport): Promise<LoginServer> {
  const issuer = spec.issuer ?? (spec.authorizationUrl === null ? new URL(spec.tokenUrl).origin : null);
  if (issuer === null) return { issuer: new URL(spec.tokenUrl).origin, authorizationEndpoint: spec.authorizationUrl as string, tokenEndpoint: spec.tokenUrl, found: 'configured' };
  const oauth = await loadOauth();
  const seen = { status: null as number | null };
  let as: Oauth.AuthorizationServer;
  try {
    as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', [oauth.customFetch]: fetchVia(transport, seen) }));
  } catch (err) {
    const why = asMintFailed(err, seen.status, oauth);
    throw new LoginError(`no authorization server metadata at ${issuer}/.well-known/oauth-authorization-server (${why.message}); set inject.issuer to the server's issuer, or inject.authorization_url`, { cause: err });
  }
  const authorizationEndpoint = spec.authorizationUrl ?? as.authorization_endpoint;
  if (!isHttpsEndpoint(authorizationEndpoint)) throw new LoginError(`${issuer}'s metadata names no https authorization_endpoint; set inject.authorization_url`);
  return { issuer: as.issuer, authorizationEndpoint, tokenEndpoint: spec.tokenUrl, found: 'discovered' };
}

/** An endpoint a server's metadata may name: an https URL without credentials or fragment, nothing else. */
function isHttpsEndpoint(u: string | undefined): u is string {
  if (u === undefined) return false;
  try {
    const url = new URL(u);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.hash === '' && !/[\u0000-\u001f\u007f-\u009f\s]/.test(u);
  } catch {
    return false;
  }
}

/** One login in progress: the URL the user opens, and what only keyswap knows (the PKCE verifier, the state). */
export interface Login {
  readonly url: URL;
  readonly redirectUri: string;
  readonly state: string;
  readonly verifier: string;
}

/** The authorization request (RFC 6749 §4.1.1) with PKCE S256 (RFC 7636) and a loopback redirect (RFC 8252 §7.3). */
export async function beginLogin(server: LoginServer, spec: Refresh, clientId: string, redirectUri: string): Promise<Login> {
  const oauth = await loadOauth();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(server.authorizationEndpoint);
  for (const [k, v] of Object.entries(spec.authorizationParams)) url.searchParams.set(k, v);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (spec.scopes !== null) url.searchParams.set('scope', spec.scopes);
  if (spec.resource !== null) url.searchParams.set('resource', spec.resource);
  return { url, redirectUri, state, verifier };
}

/**
 * The callback's parameters checked (oauth4webapi: the state keyswap sent, no error, one code) and the code
 * exchanged with the verifier; the refresh token the server issued. A callback that fails the check is never
 * exchanged: LoginError('state') for a state keyswap did not send, LoginError for an error the server reported.
 */
export async function finishLogin(server: LoginServer, spec: Refresh, login: Login, clientId: string, clientSecret: string, callback: URLSearchParams, transport: TokenTransport): Promise<{ readonly refreshToken: string }> {
  const oauth = await loadOauth();
  const as: Oauth.AuthorizationServer = { issuer: server.issuer, token_endpoint: server.tokenEndpoint, authorization_endpoint: server.authorizationEndpoint };
  const client: Oauth.Client = { client_id: clientId };
  // Checked here first, so a forged callback is told apart (and waited past) before anything else is looked at.
  if (callback.getAll('state').length !== 1 || callback.get('state') !== login.state) throw new LoginError('state');
  let params: URLSearchParams;
  try {
    params = oauth.validateAuthResponse(as, client, callback, login.state);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) throw new LoginError(`the authorization server refused: ${String(err.error).replace(/[^\w.-]/g, '').slice(0, 64)}`);
    throw new LoginError(`bad callback (${(err as Error).message.slice(0, 120)})`);
  }
  const auth = clientAuthOf(oauth, spec.clientAuth, clientSecret);
  const seen = { status: null as number | null };
  try {
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, login.redirectUri, login.verifier, { [oauth.customFetch]: fetchVia(transport, seen), ...(spec.resource === null ? {} : { additionalParameters: { resource: spec.resource } }) });
    const result = await oauth.processAuthorizationCodeResponse(as, client, response, { requireIdToken: false });
    if (result.refresh_token === undefined) throw new LoginError('the authorization server issued no refresh token (a provider may need offline access asked for: see docs/mcp.md#oauth-login)');
    return { refreshToken: checkCredentialText(result.refresh_token) };
  } catch (err) {
    if (err instanceof LoginError) throw err;
    const failed = err instanceof MintFailed ? err : asMintFailed(err, seen.status, oauth);
    throw new LoginError(`the code exchange failed: ${failed.message}`, { cause: err });
  }
}

/**
 * A remote MCP server's authorization server, as the MCP authorization spec finds it: the server's protected
 * resource metadata (RFC 9728, at its well-known URL), the first authorization server it names, and that server's
 * metadata (RFC 8414, else OpenID discovery). Every endpoint must be https.
 */
export async function mcpLoginServer(resource: URL, transport: TokenTransport): Promise<LoginServer & { readonly registrationEndpoint: string | null }> {
  const oauth = await loadOauth();
  const seen = { status: null as number | null };
  const fetch = { [oauth.customFetch]: fetchVia(transport, seen) };
  let issuer: string | undefined;
  try {
    const rs = await oauth.processResourceDiscoveryResponse(resource, await oauth.resourceDiscoveryRequest(resource, fetch));
    issuer = rs.authorization_servers?.[0];
  } catch (err) {
    throw new LoginError(`${resource.href} publishes no protected resource metadata (RFC 9728: ${resource.origin}/.well-known/oauth-protected-resource${resource.pathname === '/' ? '' : resource.pathname}): ${asMintFailed(err, seen.status, oauth).message}`, { cause: err });
  }
  if (issuer === undefined) throw new LoginError(`${resource.href}'s metadata names no authorization server`);
  const named = issuer;
  if (!isHttpsEndpoint(issuer)) throw new LoginError(`${resource.href}'s metadata names ${JSON.stringify(String(named).slice(0, 200))}, not an https URL an authorization server can have`);
  let as: Oauth.AuthorizationServer | null = null;
  for (const algorithm of ['oauth2', 'oidc'] as const) {
    try {
      as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { algorithm, ...fetch }));
      break;
    } catch {
      // the other well-known document, then give up
    }
  }
  if (as === null) throw new LoginError(`no authorization server metadata at ${issuer} (RFC 8414 or OpenID discovery)`);
  if (!isHttpsEndpoint(as.authorization_endpoint) || !isHttpsEndpoint(as.token_endpoint)) throw new LoginError(`${new URL(issuer).href}'s metadata lacks an https authorization or token endpoint (no credentials, no fragment)`);
  return { issuer: as.issuer, authorizationEndpoint: as.authorization_endpoint, tokenEndpoint: as.token_endpoint, found: 'discovered', registrationEndpoint: isHttpsEndpoint(as.registration_endpoint) ? as.registration_endpoint : null };
}

/** Dynamic client registration (RFC 7591) of keyswap as a public client with this loopback redirect (PKCE proves it). */
export async function registerClient(server: LoginServer & { readonly registrationEndpoint: string | null }, redirectUri: string, transport: TokenTransport): Promise<{ readonly clientId: string; readonly clientSecret: string | null }> {
  if (server.registrationEndpoint === null) throw new LoginError(`${server.issuer} offers no dynamic client registration: register a client there by hand and configure it as an oauth2_refresh secret (docs/mcp.md)`);
  const oauth = await loadOauth();
  const seen = { status: null as number | null };
  const as: Oauth.AuthorizationServer = { issuer: server.issuer, registration_endpoint: server.registrationEndpoint };
  try {
    const client = await oauth.processDynamicClientRegistrationResponse(await oauth.dynamicClientRegistrationRequest(as, {
      client_name: 'keyswap', redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
    }, { [oauth.customFetch]: fetchVia(transport, seen) }));
    return { clientId: checkCredentialText(client.client_id), clientSecret: typeof client.client_secret === 'string' ? checkCredentialText(client.client_secret) : null };
  } catch (err) {
    throw new LoginError(`client registration at ${server.registrationEndpoint} failed: ${asMintFailed(err, seen.status, oauth).message}`, { cause: err });
  }
}
