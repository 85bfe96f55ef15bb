import { z } from 'zod';

/**
 * The YAML as written (snake_case), validated structurally. Semantic rules that need more than one field
 * (placeholder uniqueness, wildcard policy, template names) live in compile-config.ts.
 */
const nonNegInt = z.number().int().nonnegative();
const positiveInt = z.number().int().positive();
const path = z.string().min(1);

const binding = z.strictObject({
  host: z.string().min(1),
  methods: z.array(z.string().min(1)).optional(),
  paths: z.array(z.string().min(1)).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  allow_plaintext: z.boolean().optional(),
  subdomains: z.array(z.string().min(1)).optional(),
  rate: z.string().optional(),
  approve: z.union([z.boolean(), z.strictObject({ timeout_seconds: positiveInt.max(86_400).optional(), remember_seconds: z.number().int().min(0).max(2_592_000).optional() })]).optional(),
  mcp: z.strictObject({ tools: z.array(z.string()) }).optional(),
});

// Loose: the keys an injector takes depend on its type, so compile-config.ts names the unknown ones after it has
// said whether the type itself exists (an agent-vault-proxy `oauth2_refresh` is named as unsupported first, not
// buried under errors for its `token_url` and friends).
const site = z.looseObject({
  type: z.string().optional(),
  header: z.string().min(1).optional(),
  format: z.string().optional(),
  template: z.string().optional(),
  param: z.string().min(1).optional(),
  username: z.string().optional(),
  content_type: z.string().optional(),
});
// agent-vault-proxy's spelling of several sites: `type: multi` with 2–4 leaf `injectors:` (no nesting).
const inject = site.extend({ injectors: z.array(site).optional() });

const secret = z.strictObject({
  placeholder: z.string(),
  // One site, or a list when SDKs send the same key in different places (Anthropic: x-api-key or Bearer).
  inject: z.union([inject, z.array(inject).min(1)]),
  compose: z.array(z.string().min(1)).optional(),
  bindings: z.array(binding),
  response_scrub: z.enum(['redact', 'block', 'off']).optional(),
  honeytoken: z.boolean().optional(),
  // Which backend holds it (a name under `backends:`), and for backends with paths and JSON values, where.
  backend: z.union([z.string().min(1), z.strictObject({ name: z.string().min(1).optional(), path: z.string().min(1).optional(), field: z.string().min(1).optional() })]).optional(),
});

const backendConfig = z.record(z.string(), z.unknown());
const BACKEND_TYPES = ['env', 'static', 'file', 'credentials', 'files', 'bws', 'vault', 'aws_secrets_manager', 'onepassword', 'gcp_secret_manager'] as const;
const backendEntry = z.strictObject({ type: z.enum(BACKEND_TYPES), config: backendConfig.optional() });

export const rawConfigSchema = z.strictObject({
  version: z.literal(1),
  listen: z.string().optional(),
  listen_tls: z.strictObject({ listen: z.string(), cert_file: path, key_file: path, client_ca_file: path }).optional(),
  state_dir: path.optional(),
  unmatched_destination_policy: z.enum(['forward_unmodified', 'deny']).optional(),
  tls_termination: z.enum(['bound', 'all']).optional(),
  allow_wildcard_hosts: z.boolean().optional(),
  cache: z
    .strictObject({
      ttl_seconds: positiveInt.optional(),
      jitter_seconds: nonNegInt.optional(),
      max_entries: positiveInt.optional(),
      max_stale_seconds: nonNegInt.optional(),
    })
    .optional(),
  audit: z.strictObject({ path: path.optional(), key_file: path.optional(), fail_on_unwritable: z.boolean().optional(), max_bytes: z.number().int().min(4096).optional(), format: z.enum(['keyswap', 'ocsf']).optional() }).optional(),
  backend: backendEntry.optional(),
  backends: z.record(z.string(), backendEntry).optional(),
  upstream: z
    .strictObject({
      extra_ca_file: path.nullable().optional(),
      resolve: z.record(z.string(), z.string()).optional(),
      connect_timeout_seconds: positiveInt.optional(),
      idle_timeout_seconds: positiveInt.optional(),
      proxy: z.string().optional(),
      proxy_credentials: z.string().min(1).optional(),
      no_proxy: z.array(z.string()).optional(),
    })
    .optional(),
  timeouts: z
    .strictObject({
      request_head_seconds: positiveInt.optional(),
      keep_alive_seconds: positiveInt.optional(),
      tls_handshake_seconds: positiveInt.optional(),
      tunnel_idle_seconds: positiveInt.optional(),
      upload_idle_seconds: positiveInt.optional(),
      upload_max_seconds: positiveInt.optional(),
    })
    .optional(),
  secrets: z.record(z.string(), secret),
  routes: z.record(z.string(), z.string()).optional(),
  ui: z.strictObject({ listen: z.string().min(1) }).optional(),
  transparent: z.strictObject({ listen: z.string().min(1), listen_http: z.string().min(1).optional(), uid: z.number().int().min(1).max(4_294_967_294), client: z.string().min(1).optional() }).optional(),
  shared_state: z
    .strictObject({
      redis: z.strictObject({
        url: z.string().min(1),
        password_secret: z.string().min(1).optional(),
        tls: z.strictObject({ ca_file: path.optional(), server_name: z.string().min(1).optional() }).optional(),
        prefix: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 letters, digits, ":", "_", "." or "-"').optional(),
      }),
      key_secret: z.string().min(1).optional(),
      on_unavailable: z.enum(['refuse', 'local']).optional(),
      replicas: z.number().int().min(1).max(1000).optional(),
    })
    .optional(),
  alerts: z
    .strictObject({
      webhooks: z.array(z.strictObject({ url: z.url(), signing_secret: z.string().min(1), events: z.array(z.string()).min(1).optional() })).optional(),
      email: z
        .strictObject({
          smtp: z.strictObject({
            host: z.string().min(1),
            port: z.number().int().min(1).max(65535).optional(),
            starttls: z.boolean().optional(),
            username_secret: z.string().min(1).optional(),
            password_secret: z.string().min(1).optional(),
            ca_file: path.optional(),
          }),
          from: z.string().min(3),
          to: z.array(z.string().min(3)).min(1),
          events: z.array(z.string()).min(1).optional(),
        })
        .optional(),
    })
    .optional(),
  usage: z
    .record(
      z.string(),
      z.strictObject({
        secrets: z.array(z.string().min(1)).min(1).optional(),
        clients: z.array(z.string().min(1)).min(1).optional(),
        limit: positiveInt,
        period: z.enum(['hour', 'day', 'week', 'month']),
        warn_at: z.union([z.string().regex(/^\d{1,3}(\.\d+)?%$/, 'must be a percentage such as 90%'), z.number().min(0).max(1)]).optional(),
      }),
    )
    .optional(),
  /** agent-vault-proxy's start-up checks: accepted so its files load; keyswap's are `keyswap doctor`. */
  preflight: z.record(z.string(), z.unknown()).optional(),
  clients: z
    .record(
      z.string(),
      z.strictObject({
        token_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters (keyswap client add writes it)').optional(),
        // SPIFFE ID spec: spiffe://TRUST-DOMAIN/PATH, lower-case trust domain, path segments of [A-Za-z0-9._-].
        spiffe_id: z.string().regex(/^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/, 'must be a SPIFFE ID such as spiffe://example.org/agent/ci (lower-case trust domain, path segments of letters, digits, ".", "-", "_")').optional(),
        secrets: z.array(z.string().min(1)).min(1),
        expires: z.union([z.string(), z.date()]).optional(),
      }),
    )
    .optional(),
});

export type RawConfig = z.infer<typeof rawConfigSchema>;
export type RawSecret = z.infer<typeof secret>;
export type RawBackend = z.infer<typeof backendEntry>;
export type RawBinding = z.infer<typeof binding>;
export type RawInject = z.infer<typeof site>;
export type RawInjectField = z.infer<typeof inject>;

export const backendSchemas = {
  env: z.strictObject({ type: z.literal('env').optional(), prefix: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional() }),
  static: z.strictObject({ type: z.literal('static').optional(), path }),
  file: z.strictObject({
    type: z.literal('file').optional(),
    path: path.optional(),
    key_file: path.optional(),
    passphrase_file: path.optional(),
    key_kms: z.string().regex(/^(aws_kms|gcp_kms|vault_transit):\/\/.+$/, 'must be aws_kms://ARN, gcp_kms://projects/…/cryptoKeys/… or vault_transit://KEYNAME').optional(),
    kms: z.strictObject({
      endpoint: z.url().optional(),
      ca_file: path.optional(),
      timeout_seconds: positiveInt.optional(),
      address: z.url().optional(),
      namespace: z.string().min(1).optional(),
      mount: z.string().min(1).optional(),
      auth: z.record(z.string(), z.string()).optional(),
    }).optional(),
  }),
  credentials: z.strictObject({ type: z.literal('credentials').optional(), directory: path.optional() }),
  files: z.strictObject({ type: z.literal('files').optional(), directory: path }),
  vault: z.strictObject({
    type: z.literal('vault').optional(),
    address: z.url(),
    mount: z.string().min(1).optional(),
    prefix: z.string().optional(),
    field: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
    ca_file: path.optional(),
    timeout_seconds: positiveInt.optional(),
    auth: z.strictObject({
      method: z.enum(['token', 'approle', 'kubernetes']),
      mount: z.string().min(1).optional(),
      token_file: path.optional(),
      role_id_file: path.optional(),
      secret_id_file: path.optional(),
      role: z.string().min(1).optional(),
      jwt_file: path.optional(),
    }),
  }),
  aws_secrets_manager: z.strictObject({
    type: z.literal('aws_secrets_manager').optional(),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1').optional(),
    endpoint: z.url().optional(),
    prefix: z.string().optional(),
    field: z.string().min(1).optional(),
    ca_file: path.optional(),
    timeout_seconds: positiveInt.optional(),
  }),
  onepassword: z.strictObject({
    type: z.literal('onepassword').optional(),
    url: z.url(),
    token_file: path,
    vault: z.string().min(1),
    field: z.string().min(1).optional(),
    ca_file: path.optional(),
    timeout_seconds: positiveInt.optional(),
  }),
  gcp_secret_manager: z.strictObject({
    type: z.literal('gcp_secret_manager').optional(),
    project: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^\d+$/, 'must be a Google Cloud project id or number').optional(),
    prefix: z.string().optional(),
    version: z.string().regex(/^(latest|\d+)$/, 'must be latest or a version number').optional(),
    field: z.string().min(1).optional(),
    endpoint: z.url().optional(),
    timeout_seconds: positiveInt.optional(),
  }),
  bws: z.strictObject({
    type: z.literal('bws').optional(),
    organization_id: z.uuid(),
    access_token_file: path.optional(),
    access_token_path: path.optional(),
    state_file: path.optional(),
    state_path: path.optional(),
    api_url: z.url().optional(),
    identity_url: z.url().optional(),
    timeout_seconds: positiveInt.optional(),
  }),
} as const;
