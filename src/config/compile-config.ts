import path from 'node:path';
import type { z } from 'zod';
import { ConfigError, ConfigErrors } from './errors.js';
import { backendSchemas, rawConfigSchema, type RawBinding, type RawConfig, type RawInject, type RawSecret } from './schema.js';
import { parseTemplate, templateNames } from './template-parse.js';
import type { BackendSpec, Binding, ClientSpec, Config, HostPort, InjectSpec, Renderer, Route, SecretSpec, SourceRef } from './types.js';
import { fieldName, type FieldPath, type YamlSource } from './yaml-source.js';

const DEFAULT_LISTEN = '127.0.0.1:14322';
const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110's methods, PATCH (RFC 5789), WebDAV's (RFC 4918, 3253, 5323) and QUERY: a typo such as GTE is a config error, not a binding that never matches. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'QUERY', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'MKCALENDAR', 'ACL']);
const DNS_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;
// Wildcards may never cover a public suffix: `*.com` or `*.co.uk` would hand a secret to anyone's domain.
const PUBLIC_SUFFIXES = new Set([
  'com', 'net', 'org', 'io', 'ai', 'dev', 'app', 'co', 'uk', 'co.uk', 'org.uk', 'ac.uk', 'com.au', 'net.au', 'de', 'fr',
  'jp', 'co.jp', 'cn', 'com.cn', 'gov', 'edu', 'info', 'biz', 'xyz', 'me', 'us', 'eu', 'cloud', 'github.io',
  'herokuapp.com', 'vercel.app', 'netlify.app', 'pages.dev', 'workers.dev', 'appspot.com', 'cloudfront.net',
  'amazonaws.com', 'azurewebsites.net', 'blob.core.windows.net', 'web.app', 'firebaseapp.com', 'fly.dev', 'onrender.com',
]);
const UNSUPPORTED_INJECT = new Set(['multi', 'oauth2_refresh', 'sigv4', 'hmac', 'jwt_bearer', 'oauth2_client_credentials', 'github_app']);

/** Validates a parsed YAML document and builds the Config; collects every problem, then throws them together. */
export function compileConfig(src: YamlSource): Config {
  const errors: ConfigError[] = [];
  const err = (p: FieldPath, problem: string, key = false): void => {
    errors.push(new ConfigError(src.file, src.lineOf(p, key), fieldName(p), problem));
  };
  const parsed = rawConfigSchema.safeParse(src.data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportIssue(issue, err, src.data);
    throw new ConfigErrors(errors);
  }
  const raw: RawConfig = parsed.data;
  const dir = path.dirname(src.file);
  const abs = (p: string): string => path.resolve(dir, p);
  const warnings: string[] = [];
  const warn = (p: FieldPath, text: string): void => {
    warnings.push(`${src.file}:${src.lineOf(p)}: ${fieldName(p)}: ${text}`);
  };

  const listen = parseHostPort(raw.listen ?? DEFAULT_LISTEN, true);
  if (listen === null) err(['listen'], `'${raw.listen}' is not host:port; e.g. 127.0.0.1:14322 or [::1]:14322`);
  const stateDir = abs(raw.state_dir ?? './certs');
  if (raw.preflight !== undefined) {
    warn(['preflight'], raw.preflight.fail_on_warning === true
      ? 'agent-vault-proxy start-up checks are not run by keyswap, so fail_on_warning: true stops nothing; run `keyswap doctor` (exit 1 on any finding) before keyswap serve instead'
      : 'agent-vault-proxy start-up checks are not run by keyswap; `keyswap doctor` checks the same and more');
  }
  if (raw.audit?.fail_on_unwritable === false) {
    warn(['audit', 'fail_on_unwritable'], 'keyswap always fails closed when the audit log cannot be written (K5); false is accepted for compatibility and has no effect');
  }
  const allowWildcardHosts = raw.allow_wildcard_hosts ?? false;
  const backend = compileBackend(raw, stateDir, abs, err);
  const resolve = new Map<string, HostPort>();
  for (const [key, value] of Object.entries(raw.upstream?.resolve ?? {})) {
    const from = parseHostPort(key, false);
    const to = parseHostPort(value, false);
    if (from === null || from.host !== from.host.toLowerCase()) err(['upstream', 'resolve', key], `key '${key}' must be a lower-case host:port`, true);
    else if (to === null) err(['upstream', 'resolve', key], `'${value}' is not host:port (the address to dial instead)`);
    else resolve.set(`${from.host}:${from.port}`, to);
  }

  const secrets: SecretSpec[] = [];
  for (const [name, rawSecret] of Object.entries(raw.secrets)) {
    const spec = compileSecret(name, rawSecret, { src, err, allowWildcardHosts });
    if (spec) secrets.push(spec);
  }
  checkPlaceholders(secrets, err);
  const clients = compileClients(raw, secrets, err);
  const routes = compileRoutes(raw, err);
  if (errors.length > 0) throw new ConfigErrors(errors);

  return {
    file: src.file,
    version: 1,
    listen: listen as HostPort,
    stateDir,
    unmatchedDestinationPolicy: raw.unmatched_destination_policy ?? 'forward_unmodified',
    tlsTermination: raw.tls_termination ?? 'bound',
    allowWildcardHosts,
    cache: {
      ttlSeconds: raw.cache?.ttl_seconds ?? 300,
      jitterSeconds: raw.cache?.jitter_seconds ?? 30,
      maxEntries: raw.cache?.max_entries ?? 100,
      maxStaleSeconds: raw.cache?.max_stale_seconds ?? 0,
    },
    audit: { path: abs(raw.audit?.path ?? './audit.jsonl'), keyFile: raw.audit?.key_file ? abs(raw.audit.key_file) : `${stateDir}/audit.key`, failOnUnwritable: raw.audit?.fail_on_unwritable ?? true, maxBytes: raw.audit?.max_bytes ?? null },
    backend: backend as BackendSpec,
    upstream: {
      extraCaFile: raw.upstream?.extra_ca_file ? abs(raw.upstream.extra_ca_file) : null,
      resolve,
      connectTimeoutMs: (raw.upstream?.connect_timeout_seconds ?? 10) * 1000,
      idleTimeoutMs: (raw.upstream?.idle_timeout_seconds ?? 60) * 1000,
    },
    timeouts: {
      requestHeadMs: (raw.timeouts?.request_head_seconds ?? 30) * 1000,
      keepAliveMs: (raw.timeouts?.keep_alive_seconds ?? 65) * 1000,
      tlsHandshakeMs: (raw.timeouts?.tls_handshake_seconds ?? 30) * 1000,
      tunnelIdleMs: (raw.timeouts?.tunnel_idle_seconds ?? 600) * 1000,
    },
    secrets,
    routes,
    clients,
    warnings,
  };
}

const ROUTE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** `routes: { openai: https://api.openai.com }`: an https origin (no path, no credentials) per lower-case name. */
function compileRoutes(raw: RawConfig, err: Report): Map<string, Route> {
  const routes = new Map<string, Route>();
  for (const [name, text] of Object.entries(raw.routes ?? {})) {
    const p: FieldPath = ['routes', name];
    if (!ROUTE_NAME.test(name)) {
      err(p, `route name '${name}' must be lower-case letters, digits, '-' or '_' (it becomes /p/${name}/ in URLs)`, true);
      continue;
    }
    let url: URL | null = null;
    try {
      url = new URL(text);
    } catch {
      url = null;
    }
    if (url === null || url.protocol !== 'https:' || url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
      err(p, 'must be an https origin such as https://api.openai.com (no path, query or credentials; plain http is never routed)');
      continue;
    }
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    routes.set(name, { name, host, port: url.port === '' ? 443 : Number(url.port) });
  }
  return routes;
}

function compileClients(raw: RawConfig, secrets: readonly SecretSpec[], err: Report): Map<string, ClientSpec> | null {
  if (raw.clients === undefined) return null;
  const known = new Set(secrets.map((s) => s.name));
  const out = new Map<string, ClientSpec>();
  for (const [name, c] of Object.entries(raw.clients)) {
    const p: FieldPath = ['clients', name];
    if (!SECRET_NAME.test(name)) err(p, `client name '${name}' must start with a letter and use only letters, digits, '_' and '-'`, true);
    c.secrets.forEach((s, i) => {
      if (!known.has(s)) err([...p, 'secrets', i], `'${s}' is not a secret in this file (known: ${[...known].join(', ') || 'none'})`);
    });
    let expiresAtMs: number | null = null;
    if (c.expires !== undefined) {
      expiresAtMs = c.expires instanceof Date ? c.expires.getTime() : Date.parse(c.expires);
      if (Number.isNaN(expiresAtMs)) err([...p, 'expires'], `'${String(c.expires)}' is not a date; use ISO 8601, e.g. 2027-01-31T00:00:00Z`);
    }
    out.set(name, { name, tokenSha256: c.token_sha256, secrets: new Set(c.secrets), expiresAtMs });
  }
  return out;
}

type Report = (p: FieldPath, problem: string, key?: boolean) => void;

function compileBackend(raw: RawConfig, stateDir: string, abs: (p: string) => string, err: Report): BackendSpec | null {
  const type = raw.backend?.type ?? 'file';
  const cfg = raw.backend?.config ?? {};
  const p: FieldPath = ['backend', 'config'];
  if (typeof cfg.type === 'string' && cfg.type !== type) {
    err([...p, 'type'], `'${cfg.type}' disagrees with backend.type '${type}'`);
    return null;
  }
  const parsed = backendSchemas[type].safeParse(cfg);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportIssue({ ...issue, path: ['backend', 'config', ...issue.path] }, err, { backend: { config: cfg } });
    return null;
  }
  const c = parsed.data as Record<string, unknown>;
  const str = (k: string): string | null => (typeof c[k] === 'string' ? (c[k] as string) : null);
  switch (type) {
    case 'env':
      return { type, prefix: str('prefix') ?? 'KEYSWAP_SECRET_' };
    case 'static':
      return { type, path: abs(str('path') ?? '') };
    case 'file': {
      if (str('key_file') && str('passphrase_file')) {
        err([...p, 'passphrase_file'], 'key_file and passphrase_file are exclusive; keep one');
        return null;
      }
      const keyFile = str('key_file');
      const passphraseFile = str('passphrase_file');
      return { type, path: abs(str('path') ?? path.join(stateDir, 'secrets.enc')), keyFile: keyFile ? abs(keyFile) : null, passphraseFile: passphraseFile ? abs(passphraseFile) : null };
    }
    case 'credentials':
      return { type, directory: str('directory') ? abs(str('directory') as string) : null };
    case 'bws': {
      const token = str('access_token_file') ?? str('access_token_path');
      const state = str('state_file') ?? str('state_path');
      return {
        type,
        organizationId: str('organization_id') ?? '',
        accessTokenFile: token ? abs(token) : null,
        stateFile: state ? abs(state) : null,
        apiUrl: str('api_url') ?? 'https://api.bitwarden.com',
        identityUrl: str('identity_url') ?? 'https://identity.bitwarden.com',
        timeoutMs: (typeof c.timeout_seconds === 'number' ? c.timeout_seconds : 10) * 1000,
      };
    }
  }
}

interface SecretContext { readonly src: YamlSource; readonly err: Report; readonly allowWildcardHosts: boolean }

function compileSecret(name: string, raw: RawSecret, ctx: SecretContext): SecretSpec | null {
  const base: FieldPath = ['secrets', name];
  const { src } = ctx;
  let failed = false;
  const err: Report = (p, problem, key) => {
    failed = true;
    ctx.err(p, problem, key);
  };
  const sub: SecretContext = { ...ctx, err };
  if (!SECRET_NAME.test(name)) err(base, `secret name '${name}' must start with a letter and use only letters, digits, '_' and '-'`, true);
  const ph = raw.placeholder;
  if (ph.length < 24) err([...base, 'placeholder'], `must be at least 24 characters (has ${ph.length}); mint one with: keyswap placeholder`);
  if (!ph.includes('PLACEHOLDER')) err([...base, 'placeholder'], "must contain the marker 'PLACEHOLDER' (e.g. sk-PLACEHOLDER-…); mint one with: keyswap placeholder");
  if (!/^[\x21-\x7e]+$/.test(ph) || /["'\\]/.test(ph)) err([...base, 'placeholder'], 'may hold only printable ASCII without spaces, quotes or backslashes');
  const inject = compileInject(name, raw.inject, raw.compose, [...base, 'inject'], err);
  if (raw.bindings.length === 0) err([...base, 'bindings'], 'is empty; a secret with no binding can never be used — list at least one {host: …}');
  const bindings = raw.bindings.map((b, i) => compileBinding(b, [...base, 'bindings', i], sub)).filter((b): b is Binding => b !== null);
  if (failed || inject === null) return null;
  return { name, placeholder: ph, inject, bindings, honeytoken: raw.honeytoken ?? false, responseScrub: raw.response_scrub ?? 'redact', source: sourceOf(src, base) };
}

function compileInject(name: string, raw: RawInject, compose: readonly string[] | undefined, p: FieldPath, err: Report): InjectSpec | null {
  const type = raw.type ?? 'header';
  if (UNSUPPORTED_INJECT.has(type)) {
    err([...p, 'type'], `inject type '${type}' is not supported by this version of keyswap (supported: header, basic, query, path, body)`);
    return null;
  }
  if (type !== 'header' && type !== 'basic' && type !== 'query' && type !== 'path' && type !== 'body') {
    err([...p, 'type'], `unknown inject type '${type}'; valid: header, basic, query, path, body`);
    return null;
  }
  const allowed: Record<string, readonly string[]> = {
    header: ['type', 'header', 'format', 'template'],
    basic: ['type', 'username', 'format', 'template'],
    query: ['type', 'param', 'format', 'template'],
    path: ['type', 'format', 'template'],
    body: ['type', 'content_type', 'format', 'template'],
  };
  for (const key of Object.keys(raw)) {
    if (!(allowed[type] ?? []).includes(key)) err([...p, key], `not valid for inject type ${type}; valid keys: ${(allowed[type] ?? []).join(', ')}`, true);
  }
  const render = compileRenderer(name, raw, compose, p, err, type === 'header' ? null : `{${name}}`);
  if (render === null) return null;
  switch (type) {
    case 'header': {
      if (!raw.header) {
        err(p, "needs `header:` (e.g. header: Authorization)");
        return null;
      }
      if (!HTTP_TOKEN.test(raw.header)) {
        err([...p, 'header'], `'${raw.header}' is not a valid header name`);
        return null;
      }
      return { type, header: raw.header.toLowerCase(), render };
    }
    case 'basic':
      if (raw.username !== undefined && raw.username.includes(':')) {
        err([...p, 'username'], "must not contain ':'");
        return null;
      }
      return { type, username: raw.username ?? null, render };
    case 'query':
      if (!raw.param) {
        err(p, 'needs `param:` naming the query parameter (e.g. param: key)');
        return null;
      }
      return { type, param: raw.param, render };
    case 'path':
      return { type, render };
    case 'body':
      return { type, contentType: raw.content_type ? raw.content_type.split(';')[0]?.trim().toLowerCase() ?? null : null, render };
  }
}

function compileRenderer(name: string, raw: RawInject, compose: readonly string[] | undefined, p: FieldPath, err: Report, defaultFormat: string | null): Renderer | null {
  if (raw.template !== undefined) {
    if (raw.format !== undefined) {
      err([...p, 'format'], 'give either format or template, not both');
      return null;
    }
    let segments;
    try {
      segments = parseTemplate(raw.template);
    } catch (e) {
      err([...p, 'template'], (e as Error).message);
      return null;
    }
    if (!compose || compose.length === 0) {
      err([...p, 'template'], 'a template needs `compose: [NAME, …]` on the secret, listing the backend secrets it reads');
      return null;
    }
    if (compose.length > 4) {
      err(['secrets', name, 'compose'], `lists ${compose.length} secrets; at most 4`);
      return null;
    }
    const used = templateNames(segments);
    for (const n of used) if (!compose.includes(n)) err([...p, 'template'], `reads ${n}, which compose does not list`);
    for (const n of compose) if (!used.has(n)) err(['secrets', name, 'compose'], `lists ${n}, which the template never reads`);
    return { kind: 'template', source: raw.template, segments, compose: [...compose] };
  }
  if (compose !== undefined) {
    err(['secrets', name, 'compose'], 'compose works only with inject.template');
    return null;
  }
  const format = raw.format ?? defaultFormat;
  if (format === null) {
    err(p, `needs format: (e.g. format: "Bearer {${name}}") or template:`);
    return null;
  }
  if (!format.includes(`{${name}}`) && !format.includes('{secret}')) {
    err([...p, 'format'], `must contain {${name}} (or {secret}) where the value goes`);
    return null;
  }
  return { kind: 'format', format };
}

function compileBinding(raw: RawBinding, p: FieldPath, ctx: SecretContext): Binding | null {
  const { err } = ctx;
  let ok = true;
  const bad = (q: FieldPath, problem: string): void => {
    ok = false;
    err(q, problem);
  };
  const host = raw.host;
  if (host !== host.toLowerCase()) bad([...p, 'host'], `must be lower-case: ${host.toLowerCase()}`);
  else if (/[:/?#@\s]/.test(host)) bad([...p, 'host'], `'${host}' must be a bare DNS name: no scheme, port or path (use port: for a port)`);
  else if (host === '*' || host === '**') bad([...p, 'host'], "'*' would bind every host; name the hosts");
  else if (host.startsWith('*.')) {
    const suffix = host.slice(2);
    if (!ctx.allowWildcardHosts) bad([...p, 'host'], 'wildcard hosts need `allow_wildcard_hosts: true` at the top level (a wildcard widens where the secret may go)');
    else if (PUBLIC_SUFFIXES.has(suffix) || suffix.split('.').length < 2) bad([...p, 'host'], `'${host}' covers a public suffix; wildcard a domain you own, e.g. *.example.com`);
    else if (!suffix.split('.').every((l) => DNS_LABEL.test(l))) bad([...p, 'host'], `'${host}' is not a valid DNS name`);
  } else if (/^[0-9.]+$/.test(host)) bad([...p, 'host'], 'IP addresses cannot be bound; bind the DNS name the agent uses');
  else if (!host.split('.').every((l) => DNS_LABEL.test(l)) || host.includes('*')) bad([...p, 'host'], `'${host}' is not a valid DNS name`);
  if (raw.subdomains !== undefined) {
    if (!host.startsWith('*.')) bad([...p, 'subdomains'], 'only valid with a `*.` wildcard host');
    else if (raw.subdomains.length === 0) bad([...p, 'subdomains'], 'is empty; list the labels or remove the key');
    raw.subdomains.forEach((s, i) => {
      if (!DNS_LABEL.test(s)) bad([...p, 'subdomains', i], `'${s}' must be a single lower-case DNS label`);
    });
  }
  let methods: string[] | null = null;
  if (raw.methods !== undefined) {
    if (raw.methods.length === 0) bad([...p, 'methods'], 'is empty; list the methods (e.g. [GET, POST]) or remove the key for any method');
    methods = raw.methods.map((m, i) => {
      if (!KNOWN_METHODS.has(m.toUpperCase())) bad([...p, 'methods', i], `'${m}' is not an HTTP method; list them (e.g. GET, POST)`);
      return m.toUpperCase();
    });
  }
  if (raw.paths !== undefined) {
    if (raw.paths.length === 0) bad([...p, 'paths'], 'is empty; list path globs (e.g. ["/v1/**"]) or remove the key for any path');
    raw.paths.forEach((g, i) => {
      if (!g.startsWith('/')) bad([...p, 'paths', i], `'${g}' must start with '/'`);
      else if (/[?#]/.test(g)) bad([...p, 'paths', i], `'${g}' must not contain a query or fragment; paths are matched without the query`);
      else if (g.split('/').some((s) => s.includes('*') && s !== '*' && s !== '**')) bad([...p, 'paths', i], `'${g}': '*' and '**' must be whole segments (e.g. /v1/*/files or /v1/**)`);
    });
  }
  let rate: Binding['rate'] = null;
  if (raw.rate !== undefined) {
    const m = /^([1-9][0-9]{0,6})\/(second|minute|hour)$/.exec(raw.rate);
    if (!m) bad([...p, 'rate'], `'${raw.rate}' is not N/second, N/minute or N/hour (e.g. "60/minute")`);
    else rate = { count: Number(m[1]), perMs: { second: 1_000, minute: 60_000, hour: 3_600_000 }[m[2] as 'second' | 'minute' | 'hour'] };
  }
  if (!ok) return null;
  return {
    host,
    subdomains: raw.subdomains ?? null,
    methods,
    paths: raw.paths ?? null,
    port: raw.port ?? null,
    allowPlaintext: raw.allow_plaintext ?? false,
    rate,
    source: sourceOf(ctx.src, p),
  };
}

function checkPlaceholders(secrets: readonly SecretSpec[], err: Report): void {
  for (let i = 0; i < secrets.length; i++) {
    for (let j = 0; j < secrets.length; j++) {
      const a = secrets[i] as SecretSpec;
      const b = secrets[j] as SecretSpec;
      if (i === j) continue;
      if (i < j && a.placeholder === b.placeholder) err(['secrets', b.name, 'placeholder'], `is the same as the placeholder of ${a.name}; each secret needs its own`);
      else if (a.placeholder !== b.placeholder && b.placeholder.includes(a.placeholder)) {
        err(['secrets', b.name, 'placeholder'], `contains the placeholder of ${a.name}; no placeholder may be part of another`);
      }
    }
  }
}

function sourceOf(src: YamlSource, p: FieldPath): SourceRef {
  return { file: src.file, line: src.lineOf(p), field: fieldName(p) };
}

/** host:port, [v6]:port; `allowZero` for listen (port 0 = pick a free port, used by tests). */
export function parseHostPort(text: string, allowZero: boolean): HostPort | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowZero)) return null;
  return { host: (m[1] ?? m[2] ?? '').toLowerCase(), port };
}

function reportIssue(issue: z.core.$ZodIssue, err: Report, data: unknown): void {
  const p = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) err([...p, key], `unknown key '${key}'${validKeysHint(p)}`, true);
      return;
    case 'invalid_type':
      if (valueAt(data, p) === undefined) err(p, `is required (${article(issue.expected)})`, true);
      else err(p, `must be ${article(issue.expected)}, not ${describe(valueAt(data, p))}`);
      return;
    case 'invalid_value':
      err(p, `must be one of: ${issue.values.map((v) => String(v)).join(', ')}`);
      return;
    case 'too_small':
      err(p, issue.origin === 'array' ? 'must not be empty' : issue.origin === 'string' ? 'must not be empty' : `must be at least ${String(issue.minimum)}`);
      return;
    case 'too_big':
      err(p, `must be at most ${String(issue.maximum)}`);
      return;
    case 'invalid_format':
      err(p, `must be a valid ${issue.format}`);
      return;
    default:
      err(p, issue.message);
  }
}

function validKeysHint(p: FieldPath): string {
  const keys = knownKeys(p);
  return keys ? `; valid keys here: ${keys.join(', ')}` : '';
}

function knownKeys(p: FieldPath): string[] | null {
  const shape = (o: unknown): string[] => Object.keys((o as { shape: Record<string, unknown> }).shape);
  const top = rawConfigSchema.shape;
  if (p.length === 0) return shape(rawConfigSchema);
  if (p.length === 1 && (p[0] === 'cache' || p[0] === 'audit' || p[0] === 'upstream' || p[0] === 'backend' || p[0] === 'timeouts')) {
    return shape((top[p[0]] as unknown as { unwrap(): unknown }).unwrap());
  }
  if (p[0] === 'secrets' && p.length === 2) return ['placeholder', 'inject', 'compose', 'bindings', 'response_scrub', 'honeytoken'];
  if (p[0] === 'secrets' && p[2] === 'inject') return ['type', 'header', 'format', 'template', 'param', 'username', 'content_type'];
  if (p[0] === 'secrets' && p[2] === 'bindings' && p.length === 4) return ['host', 'methods', 'paths', 'port', 'allow_plaintext', 'subdomains', 'rate'];
  if (p[0] === 'backend' && p[1] === 'config') return null;
  return null;
}

function valueAt(data: unknown, p: FieldPath): unknown {
  let v: unknown = data;
  for (const s of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

// Only the kind of value, never the value: a config error can reach the audit log (config_reload), and the
// value could be a placeholder.
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/** A type as the YAML author thinks of it, never zod's name for it ("record"). */
function article(expected: string): string {
  if (expected === 'object' || expected === 'record' || expected === 'map') return 'a mapping';
  if (expected === 'array' || expected === 'tuple' || expected === 'set') return 'a list';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
