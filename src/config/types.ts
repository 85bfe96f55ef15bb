/**
 * The validated, compiled configuration. zod (config/schema.ts) maps the YAML's snake_case onto these
 * camelCase shapes once, at the edge; everything inside keyswap reads only these types.
 * Paths are absolute (resolved against the config file's directory).
 */
import type { TemplateSegment } from './template-ast.js';

export interface HostPort { readonly host: string; readonly port: number }

/** A corporate proxy keyswap dials its upstreams through; `credentialsSecret` names a backend secret holding `user:password`. */
export interface ParentProxy extends HostPort { readonly credentialsSecret: string | null }

/** One `upstream.no_proxy` entry, matched against the name the agent asked for (curl's NO_PROXY reading). */
export type NoProxyRule =
  | { readonly kind: 'all' }
  | { readonly kind: 'domain'; readonly domain: string }
  | { readonly kind: 'ip'; readonly address: string }
  | { readonly kind: 'cidr'; readonly address: string; readonly bits: number; readonly family: 'ipv4' | 'ipv6' };

/** A base-URL route's upstream: always https, verified like any other upstream. */
export interface BaseUrlRoute { readonly name: string; readonly host: string; readonly port: number }

/** Where a value is found: the YAML file, 1-based line, and the dotted field path (`secrets.A.bindings[0].host`). */
export interface SourceRef { readonly file: string; readonly line: number; readonly field: string }

/** How a secret's value becomes the text placed at its site. */
export type Renderer =
  /** `format: "Bearer {NAME}"`: literal replace of `{NAME}` (or `{secret}`) with the secret's value. */
  | { readonly kind: 'format'; readonly format: string }
  /** `compose: [A, B]` + `template: "{{ ... }}"`: the closed expression language, parsed at load. */
  | { readonly kind: 'template'; readonly source: string; readonly segments: readonly TemplateSegment[]; readonly compose: readonly string[] }
  /**
   * A credential keyswap mints from backend secrets (an OAuth2 access token, a GitHub App installation token, a
   * signed JWT): `format` with `slot` (`{access_token}`, `{token}`, `{jwt}`) replaced by what was minted.
   */
  | { readonly kind: 'minted'; readonly format: string; readonly slot: string; readonly minter: MinterSpec }
  /**
   * A request signature computed over the request as it goes upstream (SigV4, HMAC): the placeholder in this
   * header is only the trigger; the signer writes this header (and its companions: x-amz-date, a timestamp).
   */
  | { readonly kind: 'signed'; readonly signer: SignerSpec };

export type SignerSpec =
  | {
      readonly kind: 'sigv4';
      /** Null: the region, or the service, the client's own SigV4 credential scope names. */
      readonly region: string | null;
      readonly service: string | null;
      readonly accessKeyIdSecret: string;
      readonly secretAccessKeySecret: string;
      readonly sessionTokenSecret: string | null;
    }
  | {
      readonly kind: 'hmac';
      readonly secretKeySecret: string;
      /** Tokens: {method} {path} {query} {host} {body_sha256} {timestamp}. */
      readonly signingString: string;
      readonly algorithm: 'sha1' | 'sha256' | 'sha384' | 'sha512';
      readonly encoding: 'hex' | 'base64';
      readonly timestampHeader: string | null;
    };

/** How a minted credential is obtained. Every `*Secret` names a backend secret; every URL is fixed by config. */
export type MinterSpec =
  | {
      readonly kind: 'oauth2_client_credentials';
      readonly tokenUrl: string;
      readonly clientAuth: 'body_post' | 'basic';
      readonly clientIdSecret: string;
      readonly clientSecretSecret: string;
      readonly scopes: string | null;
      readonly safetyMs: number;
      readonly maxMs: number;
    }
  | {
      readonly kind: 'oauth2_refresh';
      readonly tokenUrl: string;
      readonly clientAuth: 'body_post' | 'basic' | 'none';
      readonly clientIdSecret: string;
      /** null: a public client (clientAuth none). */
      readonly clientSecretSecret: string | null;
      /** RFC 8707 `resource` on every token request (an MCP server's URL); null: none. */
      readonly resource: string | null;
      readonly refreshTokenSecret: string;
      readonly scopes: string | null;
      readonly safetyMs: number;
      readonly maxMs: number;
      /**
       * A refresh token the provider rotates is stored back (a writable backend) before the new access token is
       * used. False: such an exchange fails (write_back_failed) rather than drop the token and lock the credential out.
       */
      readonly writeBack: boolean;
      /** `keyswap oauth login`: the authorization server to discover (RFC 8414), else this authorization endpoint. */
      readonly issuer: string | null;
      readonly authorizationUrl: string | null;
      /** What the provider preset adds to the authorization request (Google's access_type=offline). */
      readonly authorizationParams: Readonly<Record<string, string>>;
    }
  | {
      /** RFC 7523: a JWT signed with a Google service account's key, exchanged for an access token. */
      readonly kind: 'google_service_account';
      /** The service account's JSON key file, held as one secret. */
      readonly keySecret: string;
      readonly scopes: string;
      /** Domain-wide delegation: the user the account acts as. */
      readonly subject: string | null;
      readonly tokenUrl: string;
      readonly safetyMs: number;
      readonly maxMs: number;
    }
  | {
      readonly kind: 'github_app';
      readonly appId: string;
      readonly installationId: string;
      readonly privateKeySecret: string;
      /** `https://api.github.com`, or a GitHub Enterprise Server's API base. */
      readonly apiBaseUrl: string;
    }
  | {
      readonly kind: 'jwt_bearer';
      readonly signingKeySecret: string;
      readonly algorithm: 'HS256' | 'RS256' | 'ES256';
      readonly issuer: string | null;
      readonly subject: string | null;
      readonly audience: string | null;
      readonly ttlSeconds: number;
      readonly extraClaims: Readonly<Record<string, unknown>>;
    };

/** A place in a request where a secret may be injected (a "site"); a secret has one or more. */
export type InjectSpec =
  /** The named header (lower-cased here) must carry the placeholder; its whole value becomes the rendering. */
  | { readonly type: 'header'; readonly header: string; readonly render: Renderer }
  /**
   * `Authorization: Basic base64(user:pass)`: the placeholder is found in the decoded credentials and replaced
   * there by the rendering; with `username` set the credentials become `username:<rendering>`.
   */
  | { readonly type: 'basic'; readonly username: string | null; readonly render: Renderer }
  /** The query parameter `param` must carry the placeholder; its value becomes the URL-encoded rendering. */
  | { readonly type: 'query'; readonly param: string; readonly render: Renderer }
  /** A path segment carries the placeholder (`/bot<token>/sendMessage`); it is replaced by the encoded rendering. */
  | { readonly type: 'path'; readonly render: Renderer }
  /**
   * The request body carries the placeholder; it is replaced as the body streams. `contentType` (a media type,
   * lower-case) limits this to bodies of that type; others pass byte-exact.
   */
  | { readonly type: 'body'; readonly contentType: string | null; readonly render: Renderer }
  /**
   * Text messages the agent sends on a WebSocket whose handshake the binding covers: the placeholder is replaced
   * in each message, and each substitution is audited before that message leaves. Opt-in: without this site a
   * placeholder in a message travels verbatim.
   */
  | { readonly type: 'websocket_message'; readonly render: Renderer };

export interface Binding {
  /** Lower-case DNS name, or `*.suffix` (one label) when allow_wildcard_hosts is set. */
  readonly host: string;
  /** With a `*.` host: the only single labels the wildcard may stand for (agent-vault-proxy `subdomains:`). */
  readonly subdomains: readonly string[] | null;
  /** Upper-case methods; null = any method. */
  readonly methods: readonly string[] | null;
  /** Path globs (`*` one segment, `**` any depth), matched on the path without its query; null = any path. */
  readonly paths: readonly string[] | null;
  /** Destination port; null = the scheme's default (443, or 80 for plaintext). */
  readonly port: number | null;
  readonly allowPlaintext: boolean;
  /** `rate: "60/minute"`: a token bucket per client and secret; null = unlimited. */
  readonly rate: { readonly count: number; readonly perMs: number } | null;
  /**
   * `approve:`: a request this binding would inject into is held until an operator approves it (or `timeoutMs`
   * passes); an approval may be remembered for `rememberMs` per client, binding and method. null: not held.
   */
  readonly approve: { readonly timeoutMs: number; readonly rememberMs: number } | null;
  /**
   * `mcp: { tools: [...] }`: the destination is a remote MCP server, and of its tools only these (names, `*` globs)
   * may be called. It holds for every request to the binding's host and port, whatever its path, method, client or
   * placeholder: a path the server routes but this binding does not name must not be a way around it.
   */
  readonly mcp: { readonly tools: readonly string[] } | null;
  readonly source: SourceRef;
}

export interface SecretSpec {
  /** The config key (`OPENAI_API_KEY`): also the backend name fetched, unless compose names others. */
  readonly name: string;
  readonly placeholder: string;
  /**
   * Where the placeholder is accepted, each with its own rendering (`x-api-key: {NAME}` or `Authorization: Bearer
   * {NAME}`): the value is written only where the placeholder was found. Never empty; at most one body site.
   */
  readonly sites: readonly [InjectSpec, ...InjectSpec[]];
  readonly bindings: readonly Binding[];
  /** A trap: any use of its placeholder, allowed or not, is audited as honeytoken_triggered. */
  readonly honeytoken: boolean;
  /** What keyswap does when a response echoes this secret: redact (default), block (502), off. */
  readonly responseScrub: 'redact' | 'block' | 'off';
  /** The `backends:` name that holds it and every name it fetches; null: the default `backend:`. */
  readonly backend: string | null;
  /** `backend: { path, field }`: where that backend finds this secret's own value (null: by its name). */
  readonly location: BackendLocation | null;
  readonly source: SourceRef;
}

/** `backend: { path, field }` on a secret: where a backend with paths and JSON values finds it (null: by its name). */
export interface BackendLocation { readonly path: string | null; readonly field: string | null }

/** How keyswap logs in to Vault: a token file (Vault Agent's sink), an AppRole, or a Kubernetes service account. */
export type VaultAuth =
  | { readonly method: 'token'; readonly tokenFile: string }
  | { readonly method: 'approle'; readonly mount: string; readonly roleIdFile: string; readonly secretIdFile: string }
  | { readonly method: 'kubernetes'; readonly mount: string; readonly role: string; readonly jwtFile: string };

/** Where a Vault (or OpenBao) answers, and as whom keyswap talks to it: the backend's and transit's. */
export interface VaultConnection {
  readonly address: string;
  readonly namespace: string | null;
  readonly caFile: string | null;
  readonly timeoutMs: number;
  readonly auth: VaultAuth;
}

/** `backend.config.kms`: the endpoint and CA of AWS KMS, or the Vault that holds the transit key. */
export interface KmsSettings {
  readonly endpoint: string | null;
  readonly caFile: string | null;
  readonly timeoutMs: number;
  readonly vault: (VaultConnection & { readonly mount: string }) | null;
}

export type BackendSpec =
  | { readonly type: 'env'; readonly prefix: string }
  | { readonly type: 'static'; readonly path: string }
  | {
      readonly type: 'file';
      readonly path: string;
      readonly keyFile: string | null;
      readonly passphraseFile: string | null;
      /** `aws_kms://ARN` or `vault_transit://KEY`: a KMS wraps the store key (envelope encryption). */
      readonly keyKms: string | null;
      /** How to reach a KMS (for key_kms, and for `secret rekey --to-kms`). */
      readonly kms: KmsSettings;
    }
  | { readonly type: 'credentials'; readonly directory: string | null }
  | { readonly type: 'files'; readonly directory: string }
  | {
      readonly type: 'aws_secrets_manager';
      readonly region: string | null;
      readonly endpoint: string | null;
      readonly prefix: string;
      /** null: the whole SecretString. */
      readonly field: string | null;
      readonly caFile: string | null;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'onepassword';
      readonly url: string;
      readonly tokenFile: string;
      readonly vault: string;
      /** A field label; null: the item's password, else its `credential` field. */
      readonly field: string | null;
      readonly caFile: string | null;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'gcp_secret_manager';
      readonly project: string;
      readonly prefix: string;
      readonly version: string;
      /** null: the whole payload. */
      readonly field: string | null;
      /** An https origin instead of secretmanager.googleapis.com (a private endpoint, a test server). */
      readonly endpoint: string | null;
      readonly timeoutMs: number;
    }
  | ({ readonly type: 'vault'; readonly mount: string; readonly prefix: string; readonly field: string } & VaultConnection)
  | {
      readonly type: 'bws';
      readonly organizationId: string;
      readonly accessTokenFile: string | null;
      readonly stateFile: string | null;
      readonly apiUrl: string;
      readonly identityUrl: string;
      readonly timeoutMs: number;
    };

/** An agent identity: it authenticates with `Proxy-Authorization: Basic NAME:TOKEN`, and unlocks only its secrets. */
export interface ClientSpec {
  readonly name: string;
  /** SHA-256 of the token, hex: the token itself is shown once and never stored. null: a SPIFFE client. */
  readonly tokenSha256: string | null;
  /** The URI SAN of the X.509-SVID it presents on `listen_tls` (chained to `client_ca_file`). null: a token client. */
  readonly spiffeId: string | null;
  readonly secrets: ReadonlySet<string>;
  readonly expiresAtMs: number | null;
  /**
   * A session (`keyswap run`, control/sessions.ts): an ephemeral client acting for the client `parent`, within its
   * secrets; quotas and rate limits count it as that client. Absent for the clients the config names.
   */
  readonly session?: { readonly parent: string; readonly command: string; readonly startedAtMs: number };
}

/** `alerts.webhooks[]`: where alerts go, signed per Standard Webhooks with the backend secret `signingSecret`. */
export interface WebhookSpec {
  readonly url: string;
  readonly signingSecret: string;
  /** The alert events it receives (all when the config names none). */
  readonly events: ReadonlySet<string>;
}

/** `alerts.email`: mail through an SMTP server over TLS (STARTTLS, or port 465), verified. */
export interface EmailSpec {
  readonly host: string;
  readonly port: number;
  readonly usernameSecret: string | null;
  readonly passwordSecret: string | null;
  readonly caFile: string | null;
  readonly from: string;
  readonly to: readonly string[];
  readonly events: ReadonlySet<string>;
}

/** `usage.NAME`: a quota on uses (requests, streams, WebSocket messages keyswap injected into) per calendar period, UTC. */
export interface QuotaSpec {
  readonly name: string;
  /** null: every secret counts. */
  readonly secrets: ReadonlySet<string> | null;
  /** null: every client (and no client) counts. */
  readonly clients: ReadonlySet<string> | null;
  readonly limit: number;
  readonly period: 'hour' | 'day' | 'week' | 'month';
  /** The fraction of the limit from which responses carry keyswap-usage-warning (0.9 for 90%). */
  readonly warnAt: number;
}

export interface Config {
  /** Absolute path of the file this came from. */
  readonly file: string;
  readonly version: 1;
  readonly listen: HostPort;
  /**
   * The TLS proxy listener (an `https://` proxy URL): keyswap's certificate and key, and the trust bundle agents'
   * client certificates (X.509-SVIDs) chain to. The three files are re-read when they change on disk.
   */
  readonly listenTls: { readonly listen: HostPort; readonly certFile: string; readonly keyFile: string; readonly clientCaFile: string } | null;
  readonly stateDir: string;
  readonly unmatchedDestinationPolicy: 'forward_unmodified' | 'deny';
  readonly tlsTermination: 'bound' | 'all';
  readonly allowWildcardHosts: boolean;
  readonly cache: {
    readonly ttlSeconds: number;
    readonly jitterSeconds: number;
    readonly maxEntries: number;
    readonly maxStaleSeconds: number;
  };
  /** maxBytes: rotate to `<path>.<timestamp>` past this size (null: rotate only on SIGUSR1). */
  /** keyFile: the chain's MAC key (default `<state_dir>/audit.key`; a systemd credential `keyswap-audit-key` wins). */
  /** format: `ocsf` also writes an OCSF-mapped copy beside the chain (audit/ocsf.ts); the chain is written either way. */
  readonly audit: { readonly path: string; readonly keyFile: string; readonly failOnUnwritable: boolean; readonly maxBytes: number | null; readonly format: 'keyswap' | 'ocsf' };
  /** The unnamed `backend:` (default: the file store in state_dir): every name no secret routes elsewhere. */
  readonly backend: BackendSpec;
  /** `backends: { NAME: … }`, opened beside the default one. */
  readonly backends: ReadonlyMap<string, BackendSpec>;
  /** Each fetched name a secret routes to a named backend (absent: the default); checked to be unambiguous. */
  readonly backendOf: ReadonlyMap<string, string>;
  /** Where a secret's own value is found, for secrets that said `backend: { path, field }`. */
  readonly locations: ReadonlyMap<string, BackendLocation>;
  readonly upstream: {
    readonly extraCaFile: string | null;
    /** `"api.example.com:443" → 127.0.0.1:9443`: changes only the address dialled, never the name verified. */
    readonly resolve: ReadonlyMap<string, HostPort>;
    readonly connectTimeoutMs: number;
    readonly idleTimeoutMs: number;
    /** `upstream.proxy`: every upstream connection is a CONNECT through it, except those `noProxy` matches. */
    readonly parent: ParentProxy | null;
    readonly noProxy: readonly NoProxyRule[];
  };
  /**
   * Agent-side connection lifetimes. requestHeadMs: a request head (a CONNECT, or a request on a decrypted
   * connection) must arrive complete within this, counted from its first byte or from the connection's start;
   * keepAliveMs: idle time between requests; tlsHandshakeMs: CONNECT answered → TLS handshake done;
   * tunnelIdleMs: an opaque tunnel with no byte either way; uploadIdleMs and uploadMaxMs: a request body that a
   * binding substitutes into, with no byte for that long, or still arriving that long after it began.
   */
  readonly timeouts: {
    readonly requestHeadMs: number;
    readonly keepAliveMs: number;
    readonly tlsHandshakeMs: number;
    readonly tunnelIdleMs: number;
    readonly uploadIdleMs: number;
    readonly uploadMaxMs: number;
  };
  /** In file order. */
  readonly secrets: readonly SecretSpec[];
  /**
   * Base-URL mode: `http://<listen>/p/<name>/…` goes to the route's https origin through the same pipeline, for
   * SDKs that take a base URL and need no CA (`routes: { openai: https://api.openai.com }`).
   */
  readonly routes: ReadonlyMap<string, BaseUrlRoute>;
  readonly alerts: { readonly webhooks: readonly WebhookSpec[]; readonly email: EmailSpec | null };
  /** `usage:`, in file order. */
  readonly usage: readonly QuotaSpec[];
  /** `ui:`: the operator's console over HTTP (loopback unless --allow-non-loopback); null: the control socket only. */
  readonly ui: { readonly listen: HostPort } | null;
  /**
   * `transparent:`: the listener the egress lock (`--transparent`) redirects an agent's port 443 to; its TLS SNI names
   * the destination. `listenHttp`: the one port 80 goes to, where each request's Host header names it. Only connections whose socket belongs to `uid` (the locked agent's user) are served, as
   * `client` when the config names clients. null: none.
   */
  readonly transparent: { readonly listen: HostPort; readonly listenHttp: HostPort | null; readonly uid: number; readonly client: string | null } | null;
  /** `shared_state:`: rate limits, quotas and minted credentials shared by several replicas through Redis. null: each keyswap alone. */
  readonly sharedState: SharedStateSpec | null;
  /** null: no `clients:` section, anyone who can reach the listener may use it (loopback only). */
  readonly clients: ReadonlyMap<string, ClientSpec> | null;
  /** Non-fatal findings at load (e.g. a compatibility key keyswap ignores), each naming file:line:field. */
  readonly warnings: readonly string[];
}

/**
 * `shared_state:`. The Redis (or Valkey) endpoint, its password as a backend secret (never in the URL), and its
 * TLS; `keySecret` names the backend secret every replica holds, under which minted credentials are shared.
 * `onUnavailable`: with Redis unreachable, refuse what needs it (503 shared_state_unavailable), or enforce each
 * limit ÷ `replicas` locally.
 */
export interface SharedStateSpec {
  readonly redis: {
    readonly host: string;
    readonly port: number;
    readonly db: number;
    readonly username: string | null;
    readonly passwordSecret: string | null;
    /** null: plain TCP (`redis://`). */
    readonly tls: { readonly caFile: string | null; readonly serverName: string | null } | null;
    /** Prepended to every key keyswap writes, so two deployments can share one Redis. */
    readonly prefix: string;
  };
  readonly keySecret: string | null;
  readonly onUnavailable: 'refuse' | 'local';
  readonly replicas: number;
}
