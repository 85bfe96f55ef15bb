/** Injectors whose credential keyswap mints (agent-vault-proxy's shapes): checked here, compiled to a header site. */
import { z } from 'zod';
import { reportIssue, type Report } from './report.js';
import type { InjectSpec, MinterSpec, SignerSpec } from './types.js';
import type { FieldPath } from './yaml-source.js';

export const MINTED_TYPES = ['oauth2_client_credentials', 'oauth2_refresh', 'google_service_account', 'github_app', 'jwt_bearer'] as const;
export type MintedType = (typeof MINTED_TYPES)[number];
export const SIGNED_TYPES = ['sigv4', 'hmac'] as const;
export type SignedType = (typeof SIGNED_TYPES)[number];

const secretName = z.string().min(1);
const httpsUrl = z.string().refine((u) => {
  try {
    const url = new URL(u);
    return url.protocol === 'https:' && url.username === '' && url.password === '' && url.hash === '';
  } catch {
    return false;
  }
}, 'must be an https:// URL without credentials or fragment');
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'is not a valid header name');
const seconds = z.number().int().positive();
const common = { type: z.string(), header: headerName.optional(), format: z.string().optional() };

const shapes = {
  oauth2_client_credentials: z.strictObject({
    ...common,
    token_url: httpsUrl,
    client_auth_method: z.enum(['body_post', 'basic']).optional(),
    client_id_secret: secretName,
    client_secret_secret: secretName,
    scopes: z.union([z.string(), z.array(z.string().min(1))]).optional(),
    cache_ttl_safety_seconds: z.number().int().nonnegative().optional(),
    cache_ttl_max_seconds: seconds.optional(),
  }),
  oauth2_refresh: z.strictObject({
    type: z.string(),
    header: headerName.optional(),
    access_token_format: z.string().optional(),
    provider: z.enum(['google', 'microsoft', 'slack', 'atlassian', 'auth0', 'okta', 'github', 'notion', 'linear']).optional(),
    token_url: httpsUrl.optional(),
    // Where `keyswap oauth login` sends the user: the authorization server by RFC 8414 discovery, or its endpoint.
    issuer: httpsUrl.optional(),
    authorization_url: httpsUrl.optional(),
    client_auth_method: z.enum(['body_post', 'basic', 'none']).optional(),
    client_id_secret: secretName,
    // Not for a public client (client_auth_method: none: PKCE, as MCP servers' dynamic registration gives).
    client_secret_secret: secretName.optional(),
    refresh_token_secret: secretName,
    // RFC 8707: the resource the token is for (an MCP server's URL), sent with every token request.
    resource: httpsUrl.optional(),
    scopes: z.union([z.string(), z.array(z.string().min(1))]).optional(),
    cache_ttl_safety_seconds: z.number().int().nonnegative().optional(),
    cache_ttl_max_seconds: seconds.optional(),
    refresh_token_write_back: z.boolean().optional(),
    write_back_min_interval_seconds: z.number().int().nonnegative().optional(),
  }),
  google_service_account: z.strictObject({
    ...common,
    service_account_key_secret: secretName,
    scopes: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    subject: z.string().min(1).optional(),
    token_url: httpsUrl.optional(),
    cache_ttl_safety_seconds: z.number().int().nonnegative().optional(),
    cache_ttl_max_seconds: seconds.optional(),
  }),
  github_app: z.strictObject({
    ...common,
    app_id: z.union([z.string().regex(/^[0-9]+$/, 'must be the numeric App ID'), z.number().int().positive()]),
    installation_id: z.union([z.string().regex(/^[0-9]+$/, 'must be the numeric installation ID'), z.number().int().positive()]),
    private_key_secret: secretName,
    api_base_url: httpsUrl.optional(),
  }),
  jwt_bearer: z.strictObject({
    ...common,
    signing_key_secret: secretName,
    algorithm: z.enum(['HS256', 'RS256', 'ES256']),
    issuer: z.string().min(1).optional(),
    subject: z.string().min(1).optional(),
    audience: z.string().min(1).optional(),
    ttl_seconds: z.number().int().min(10).max(86_400).optional(),
    extra_claims: z.record(z.string(), z.unknown()).optional(),
  }),
} as const;

const signerShapes = {
  sigv4: z.strictObject({
    type: z.string(),
    // Either may be left out: then the client's own credential scope says it, and one binding serves many services.
    region: z.string().regex(/^[a-z0-9-]+$/, 'must be an AWS region (us-east-1)').optional(),
    service: z.string().regex(/^[a-z0-9-]+$/, 'must be an AWS signing name (s3, bedrock, sts)').optional(),
    access_key_id_secret: secretName,
    secret_access_key_secret: secretName,
    session_token_secret: secretName.optional(),
  }),
  hmac: z.strictObject({
    type: z.string(),
    secret_key_secret: secretName,
    signing_string: z.string().min(1),
    header: headerName,
    algorithm: z.enum(['sha1', 'sha256', 'sha384', 'sha512']).optional(),
    encoding: z.enum(['hex', 'base64']).optional(),
    timestamp_header: headerName.optional(),
  }),
} as const;
const SIGNING_TOKENS = new Set(['{method}', '{path}', '{query}', '{host}', '{body_sha256}', '{timestamp}']);

/**
 * A request signer as a header site: SigV4 is triggered by its placeholder in Authorization (the access key id the
 * agent's SDK signed with), HMAC by its placeholder in `header`. Nothing is substituted: a signature is computed.
 */
export function compileSigned(type: SignedType, raw: Record<string, unknown>, compose: readonly string[] | undefined, p: FieldPath, err: Report): InjectSpec | null {
  const parsed = parseAt(signerShapes[type], raw, p, err);
  if (parsed === null) return null;
  if (compose !== undefined) {
    err([...p.slice(0, 2), 'compose'], `does not apply to inject type ${type}: its inputs are its *_secret keys`);
    return null;
  }
  if (type === 'sigv4') {
    const o = parsed.data as z.infer<typeof signerShapes.sigv4>;
    return { type: 'header', header: 'authorization', render: { kind: 'signed', signer: {
      kind: 'sigv4', region: o.region ?? null, service: o.service ?? null, accessKeyIdSecret: o.access_key_id_secret,
      secretAccessKeySecret: o.secret_access_key_secret, sessionTokenSecret: o.session_token_secret ?? null,
    } } };
  }
  const o = parsed.data as z.infer<typeof signerShapes.hmac>;
  const unknown = (o.signing_string.match(/\{[^}]*\}/g) ?? []).find((t) => !SIGNING_TOKENS.has(t));
  if (unknown !== undefined) {
    err([...p, 'signing_string'], `${unknown} is not a token; valid: ${[...SIGNING_TOKENS].join(' ')}`);
    return null;
  }
  return { type: 'header', header: o.header.toLowerCase(), render: { kind: 'signed', signer: {
    kind: 'hmac', secretKeySecret: o.secret_key_secret, signingString: o.signing_string, algorithm: o.algorithm ?? 'sha256',
    encoding: o.encoding ?? 'hex', timestampHeader: o.timestamp_header?.toLowerCase() ?? null,
  } } };
}

/** The backend secrets a signer reads. */
export function signerInputs(s: SignerSpec): readonly string[] {
  return s.kind === 'sigv4'
    ? [s.accessKeyIdSecret, s.secretAccessKeySecret, ...(s.sessionTokenSecret === null ? [] : [s.sessionTokenSecret])]
    : [s.secretKeySecret];
}

/** Where the minted credential goes in `format`, and the format each type defaults to. */
const SLOTS: Record<MintedType, readonly [slot: string, defaultFormat: string]> = {
  oauth2_client_credentials: ['{access_token}', 'Bearer {access_token}'],
  oauth2_refresh: ['{access_token}', 'Bearer {access_token}'],
  google_service_account: ['{access_token}', 'Bearer {access_token}'],
  github_app: ['{token}', 'token {token}'],
  jwt_bearer: ['{jwt}', 'Bearer {jwt}'],
};
/**
 * Token endpoints and client authentication per provider (agent-vault-proxy's catalogue). auth0 and okta are
 * per tenant: their token_url is the operator's.
 */
interface Provider {
  readonly tokenUrl: string | null;
  readonly clientAuth: 'body_post' | 'basic';
  /** `keyswap oauth login`: where the user authorizes, and what the provider needs asked to hand out a refresh token. */
  readonly authorizationUrl: string | null;
  readonly authorizationParams: Readonly<Record<string, string>>;
}
const PROVIDERS: Record<string, Provider> = {
  google: { tokenUrl: 'https://oauth2.googleapis.com/token', clientAuth: 'body_post', authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth', authorizationParams: { access_type: 'offline', prompt: 'consent' } },
  microsoft: { tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token', clientAuth: 'body_post', authorizationUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize', authorizationParams: {} },
  slack: { tokenUrl: 'https://slack.com/api/oauth.v2.access', clientAuth: 'basic', authorizationUrl: 'https://slack.com/oauth/v2/authorize', authorizationParams: {} },
  atlassian: { tokenUrl: 'https://auth.atlassian.com/oauth/token', clientAuth: 'body_post', authorizationUrl: 'https://auth.atlassian.com/authorize', authorizationParams: { audience: 'api.atlassian.com', prompt: 'consent' } },
  github: { tokenUrl: 'https://github.com/login/oauth/access_token', clientAuth: 'body_post', authorizationUrl: 'https://github.com/login/oauth/authorize', authorizationParams: {} },
  notion: { tokenUrl: 'https://api.notion.com/v1/oauth/token', clientAuth: 'basic', authorizationUrl: 'https://api.notion.com/v1/oauth/authorize', authorizationParams: { owner: 'user' } },
  linear: { tokenUrl: 'https://api.linear.app/oauth/token', clientAuth: 'body_post', authorizationUrl: 'https://linear.app/oauth/authorize', authorizationParams: { prompt: 'consent' } },
  // A tenant's own endpoints: token_url, and issuer (discovered) or authorization_url, from the config.
  auth0: { tokenUrl: null, clientAuth: 'basic', authorizationUrl: null, authorizationParams: {} },
  okta: { tokenUrl: null, clientAuth: 'basic', authorizationUrl: null, authorizationParams: {} },
};
const REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'];

/** An injector's keys checked by its shape; every issue reported at its field, in the config's words. */
function parseAt<S extends z.ZodType>(shape: S, raw: Record<string, unknown>, p: FieldPath, err: Report): { readonly data: z.infer<S> } | null {
  const parsed = shape.safeParse(raw);
  if (parsed.success) return { data: parsed.data };
  // reportIssue reads values by their path from the config's root: give it one with `raw` where it sits.
  const root = p.reduceRight<unknown>((inner, key) => ({ [key]: inner }), raw);
  for (const issue of parsed.error.issues) reportIssue({ ...issue, path: [...p, ...issue.path] } as z.core.$ZodIssue, err, root);
  return null;
}

/** A minted injector as a header site; null (reported) when any key is wrong. */
export function compileMinted(type: MintedType, raw: Record<string, unknown>, compose: readonly string[] | undefined, p: FieldPath, err: Report): InjectSpec | null {
  const parsed = parseAt(shapes[type], raw, p, err);
  if (parsed === null) return null;
  const [slot, defaultFormat] = SLOTS[type];
  const data = parsed.data as { format?: string; access_token_format?: string };
  const format = data.format ?? data.access_token_format ?? defaultFormat;
  const formatKey = 'access_token_format' in parsed.data ? 'access_token_format' : 'format';
  if (!format.includes(slot)) {
    err([...p, formatKey], `must contain ${slot} where the minted credential goes (default: "${defaultFormat}")`);
    return null;
  }
  if (compose !== undefined) {
    err([...p.slice(0, 2), 'compose'], `does not apply to inject type ${type}: its inputs are its *_secret keys`);
    return null;
  }
  const minter = minterOf(parsed.data as never, type, p, err);
  if (minter === null) return null;
  return { type: 'header', header: (parsed.data.header ?? 'Authorization').toLowerCase(), render: { kind: 'minted', format, slot, minter } };
}

function minterOf(d: Record<string, unknown>, type: MintedType, p: FieldPath, err: Report): MinterSpec | null {
  switch (type) {
    case 'oauth2_client_credentials': {
      const o = d as z.infer<typeof shapes.oauth2_client_credentials>;
      const safetyMs = (o.cache_ttl_safety_seconds ?? 60) * 1000;
      const maxMs = (o.cache_ttl_max_seconds ?? 3600) * 1000;
      return {
        kind: type, tokenUrl: o.token_url, clientAuth: o.client_auth_method ?? 'body_post', clientIdSecret: o.client_id_secret,
        clientSecretSecret: o.client_secret_secret, scopes: scopesOf(o.scopes), safetyMs, maxMs,
      };
    }
    case 'oauth2_refresh': {
      const o = d as z.infer<typeof shapes.oauth2_refresh>;
      const preset = o.provider === undefined ? null : PROVIDERS[o.provider] ?? null;
      const tokenUrl = o.token_url ?? preset?.tokenUrl ?? null;
      if (tokenUrl === null) {
        err([...p, 'token_url'], o.provider === undefined ? `is required without provider: (${Object.keys(PROVIDERS).join(', ')})` : `is required with provider: ${o.provider} (its token endpoint is your tenant's)`, true);
        return null;
      }
      const clientAuth = o.client_auth_method ?? preset?.clientAuth ?? 'body_post';
      if (clientAuth !== 'none' && o.client_secret_secret === undefined) {
        err([...p, 'client_secret_secret'], 'is required unless client_auth_method: none (a public client, which proves itself with PKCE)', true);
        return null;
      }
      return {
        kind: type, tokenUrl, clientAuth, clientIdSecret: o.client_id_secret,
        clientSecretSecret: clientAuth === 'none' ? null : (o.client_secret_secret as string), refreshTokenSecret: o.refresh_token_secret, scopes: scopesOf(o.scopes),
        resource: o.resource ?? null,
        safetyMs: (o.cache_ttl_safety_seconds ?? 60) * 1000, maxMs: (o.cache_ttl_max_seconds ?? 3600) * 1000,
        // write_back_min_interval_seconds is accepted and has no effect: keyswap never drops a rotated refresh
        // token (that revokes the credential for good); exchanges are single-flight, cached and backed off instead.
        writeBack: o.refresh_token_write_back ?? true,
        issuer: o.issuer ?? null,
        authorizationUrl: o.authorization_url ?? preset?.authorizationUrl ?? null,
        authorizationParams: preset?.authorizationParams ?? {},
      };
    }
    case 'google_service_account': {
      const o = d as z.infer<typeof shapes.google_service_account>;
      return {
        kind: type, keySecret: o.service_account_key_secret, scopes: scopesOf(o.scopes) ?? '', subject: o.subject ?? null,
        // The key file's own token_uri is not followed: the endpoint a credential goes to is fixed here.
        tokenUrl: o.token_url ?? 'https://oauth2.googleapis.com/token',
        safetyMs: (o.cache_ttl_safety_seconds ?? 60) * 1000, maxMs: (o.cache_ttl_max_seconds ?? 3600) * 1000,
      };
    }
    case 'github_app': {
      const o = d as z.infer<typeof shapes.github_app>;
      return { kind: type, appId: String(o.app_id), installationId: String(o.installation_id), privateKeySecret: o.private_key_secret, apiBaseUrl: (o.api_base_url ?? 'https://api.github.com').replace(/\/+$/, '') };
    }
    case 'jwt_bearer': {
      const o = d as z.infer<typeof shapes.jwt_bearer>;
      const clash = Object.keys(o.extra_claims ?? {}).find((k) => REGISTERED_CLAIMS.includes(k));
      if (clash !== undefined) {
        err([...p, 'extra_claims', clash], `is set by keyswap (issuer/subject/audience/ttl_seconds set ${REGISTERED_CLAIMS.join(', ')})`);
        return null;
      }
      return {
        kind: type, signingKeySecret: o.signing_key_secret, algorithm: o.algorithm, issuer: o.issuer ?? null, subject: o.subject ?? null,
        audience: o.audience ?? null, ttlSeconds: o.ttl_seconds ?? 300, extraClaims: o.extra_claims ?? {},
      };
    }
  }
}

function scopesOf(scopes: string | readonly string[] | undefined): string | null {
  if (scopes === undefined) return null;
  const text = typeof scopes === 'string' ? scopes.trim() : scopes.join(' ');
  return text === '' ? null : text;
}

/** Where a minter exchanges its inputs (its token endpoint, or GitHub's API); null for one that only signs. */
export function minterEndpoint(m: MinterSpec): URL | null {
  return m.kind === 'jwt_bearer' ? null : new URL(m.kind === 'github_app' ? m.apiBaseUrl : m.tokenUrl);
}

/** The backend secrets a minter reads. */
export function minterInputs(m: MinterSpec): readonly string[] {
  switch (m.kind) {
    case 'oauth2_client_credentials': return [m.clientIdSecret, m.clientSecretSecret];
    case 'oauth2_refresh': return [m.clientIdSecret, ...(m.clientSecretSecret === null ? [] : [m.clientSecretSecret]), m.refreshTokenSecret];
    case 'google_service_account': return [m.keySecret];
    case 'github_app': return [m.privateKeySecret];
    case 'jwt_bearer': return [m.signingKeySecret];
  }
}
