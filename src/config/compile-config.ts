import { isIP } from 'node:net';
import path from 'node:path';
import { ALERT_EVENTS } from './alert-events.js';
import { compileUpstream } from './compile-upstream.js';
import { parseHostPort } from './host-port.js';
import { checkPlaceholders, compileSecret, SECRET_NAME } from './compile-secret.js';
import { ConfigError, ConfigErrors } from './errors.js';
import { reportIssue, type Report } from './report.js';
import { rawConfigSchema, type RawConfig } from './schema.js';
import { backendOfSecret, compileBackends, type CompiledBackends } from './compile-backends.js';
import type { BaseUrlRoute, ClientSpec, Config, EmailSpec, HostPort, QuotaSpec, SecretSpec, SharedStateSpec, WebhookSpec } from './types.js';
import { fieldName, type FieldPath, type YamlSource } from './yaml-source.js';

const DEFAULT_LISTEN = '127.0.0.1:14322';

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
  let listenTls: Config['listenTls'] = null;
  if (raw.listen_tls !== undefined) {
    const at = parseHostPort(raw.listen_tls.listen, true);
    if (at === null) err(['listen_tls', 'listen'], `'${raw.listen_tls.listen}' is not host:port; e.g. 127.0.0.1:14323`);
    // A certificate says who an agent is only when keyswap checks it against clients; without them it says nothing.
    if (raw.clients === undefined) err(['listen_tls'], 'needs a clients: section: agents on the TLS listener are identified by their certificate (clients.NAME.spiffe_id) or a token');
    if (at !== null) listenTls = { listen: at, certFile: abs(raw.listen_tls.cert_file), keyFile: abs(raw.listen_tls.key_file), clientCaFile: abs(raw.listen_tls.client_ca_file) };
  }
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
  const upstream = compileUpstream(raw, abs, err);

  const secrets: SecretSpec[] = [];
  for (const [name, rawSecret] of Object.entries(raw.secrets)) {
    const spec = compileSecret(name, rawSecret, { src, err, allowWildcardHosts });
    if (spec) secrets.push(spec);
  }
  checkPlaceholders(secrets, err);
  const backends = compileBackends(raw, secrets, stateDir, abs, err);
  if (backends !== null) {
    for (const s of secrets) {
      const backend = backendOfSecret(backends, s);
      if (backend === undefined || backend.type === 'file' || backend.type === 'bws') continue;
      for (const site of s.sites) {
        if (site.render.kind === 'minted' && site.render.minter.kind === 'oauth2_refresh' && site.render.minter.writeBack) {
          warn(['secrets', s.name, 'inject'], `refresh_token_write_back needs a backend keyswap can write (file or bws); with ${backend.type}, a refresh token the provider rotates cannot be stored, so the request that got it is refused (write_back_failed). Move the secrets to the file or bws backend, or set refresh_token_write_back: false (the next exchange after a rotation then fails, invalid_grant)`);
        }
      }
    }
  }
  const clients = compileClients(raw, secrets, err);
  const routes = compileRoutes(raw, err);
  const usage = compileUsage(raw, secrets, clients, err);
  let transparent: Config['transparent'] = null;
  if (raw.transparent !== undefined) {
    const at = parseHostPort(raw.transparent.listen, true);
    if (at === null) err(['transparent', 'listen'], `'${raw.transparent.listen}' is not host:port; e.g. 127.0.0.1:14324`);
    else if (at.host !== '127.0.0.1') err(['transparent', 'listen'], `'${raw.transparent.listen}': the egress lock redirects to 127.0.0.1, so the transparent listener must be there (e.g. 127.0.0.1:14324)`);
    else if (at.port === 0) err(['transparent', 'listen'], 'needs a fixed port: the egress lock redirects to it');
    if (raw.clients !== undefined && raw.transparent.client === undefined) err(['transparent'], 'needs client: NAME: the config names clients, and agents redirected here present no token');
    // A warning, not an error: `keyswap client revoke` of this client must leave a file that still loads.
    if (raw.transparent.client !== undefined && !Object.hasOwn(raw.clients ?? {}, raw.transparent.client)) warn(['transparent', 'client'], `'${raw.transparent.client}' is not a client in this file: transparent connections are refused`);
    let listenHttp: HostPort | null = null;
    if (raw.transparent.listen_http !== undefined) {
      listenHttp = parseHostPort(raw.transparent.listen_http, true);
      if (listenHttp === null) err(['transparent', 'listen_http'], `'${raw.transparent.listen_http}' is not host:port; e.g. 127.0.0.1:14325`);
      else if (listenHttp.host !== '127.0.0.1' || listenHttp.port === 0) err(['transparent', 'listen_http'], `'${raw.transparent.listen_http}': the egress lock redirects port 80 to a fixed port of 127.0.0.1 (e.g. 127.0.0.1:14325)`);
      else if (at !== null && listenHttp.port === at.port) err(['transparent', 'listen_http'], 'must be another port than transparent.listen: one takes TLS, the other plain HTTP');
    }
    if (at !== null) transparent = { listen: at, listenHttp, uid: raw.transparent.uid, client: raw.transparent.client ?? null };
  }
  let ui: Config['ui'] = null;
  if (raw.ui !== undefined) {
    const at = parseHostPort(raw.ui.listen, true);
    if (at === null) err(['ui', 'listen'], `'${raw.ui.listen}' is not host:port; e.g. 127.0.0.1:14323`);
    else ui = { listen: at };
  }
  const sharedState = compileSharedState(raw, secrets, abs, err, warn);
  const alerts = { webhooks: (raw.alerts?.webhooks ?? []).map((w, i) => compileWebhook(w, ['alerts', 'webhooks', i], err)), email: compileEmail(raw, abs, err) };
  if (errors.length > 0) throw new ConfigErrors(errors);

  return {
    file: src.file,
    version: 1,
    listen: listen as HostPort,
    listenTls,
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
    audit: { path: abs(raw.audit?.path ?? './audit.jsonl'), keyFile: raw.audit?.key_file ? abs(raw.audit.key_file) : `${stateDir}/audit.key`, failOnUnwritable: raw.audit?.fail_on_unwritable ?? true, maxBytes: raw.audit?.max_bytes ?? null, format: raw.audit?.format ?? 'keyswap' },
    ...(backends as CompiledBackends),
    upstream,
    timeouts: {
      requestHeadMs: (raw.timeouts?.request_head_seconds ?? 30) * 1000,
      keepAliveMs: (raw.timeouts?.keep_alive_seconds ?? 65) * 1000,
      tlsHandshakeMs: (raw.timeouts?.tls_handshake_seconds ?? 30) * 1000,
      tunnelIdleMs: (raw.timeouts?.tunnel_idle_seconds ?? 600) * 1000,
      uploadIdleMs: (raw.timeouts?.upload_idle_seconds ?? 30) * 1000,
      uploadMaxMs: (raw.timeouts?.upload_max_seconds ?? 300) * 1000,
    },
    secrets,
    routes,
    usage,
    alerts,
    ui,
    transparent,
    sharedState,
    clients,
    warnings,
  };
}

const ROUTE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;


function compileWebhook(w: NonNullable<NonNullable<RawConfig['alerts']>['webhooks']>[number], p: FieldPath, err: Report): WebhookSpec {
  if (!w.url.startsWith('https://')) err([...p, 'url'], `'${w.url}' must be https:// (alerts go through keyswap's upstream client with strict TLS)`);
  if (!SECRET_NAME.test(w.signing_secret)) err([...p, 'signing_secret'], `'${w.signing_secret}' must be a secret name (letters, digits, '_' and '-'): the backend secret holding the signing key (whsec_…)`);
  w.events?.forEach((e, i) => { if (!(ALERT_EVENTS as readonly string[]).includes(e)) err([...p, 'events', i], `'${e}' is not an alert event (${ALERT_EVENTS.join(', ')})`); });
  return { url: w.url, signingSecret: w.signing_secret, events: new Set(w.events ?? ALERT_EVENTS) };
}

const ADDRESS = /^[^\s@<>,]+@[^\s@<>,]+$/;

function compileEmail(raw: RawConfig, abs: (p: string) => string, err: Report): EmailSpec | null {
  const e = raw.alerts?.email;
  if (e === undefined) return null;
  const p: FieldPath = ['alerts', 'email'];
  const port = e.smtp.port ?? 587;
  const host = e.smtp.host.toLowerCase().replace(/^\[|\]$/g, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host) && isIP(host) === 0) err([...p, 'smtp', 'host'], `'${e.smtp.host}' is not a host name or IP address`);
  if (e.smtp.starttls === false && port !== 465) err([...p, 'smtp', 'starttls'], 'keyswap sends mail only over TLS: leave starttls on, or use port 465 (TLS from the first byte)');
  if ((e.smtp.username_secret === undefined) !== (e.smtp.password_secret === undefined)) err([...p, 'smtp'], 'username_secret and password_secret go together', true);
  for (const k of ['username_secret', 'password_secret'] as const) {
    const v = e.smtp[k];
    if (v !== undefined && !SECRET_NAME.test(v)) err([...p, 'smtp', k], `'${v}' must be a secret name: the backend secret holding it`);
  }
  if (!ADDRESS.test(e.from)) err([...p, 'from'], `'${e.from}' is not a mail address`);
  e.to.forEach((t, i) => { if (!ADDRESS.test(t)) err([...p, 'to', i], `'${t}' is not a mail address`); });
  e.events?.forEach((ev, i) => { if (!(ALERT_EVENTS as readonly string[]).includes(ev)) err([...p, 'events', i], `'${ev}' is not an alert event (${ALERT_EVENTS.join(', ')})`); });
  return { host, port, usernameSecret: e.smtp.username_secret ?? null, passwordSecret: e.smtp.password_secret ?? null, caFile: e.smtp.ca_file === undefined ? null : abs(e.smtp.ca_file), from: e.from, to: e.to, events: new Set(e.events ?? ALERT_EVENTS) };
}

/**
 * `shared_state:`. The password lives in the backend, never in the URL (a URL is logged, shown by `ps`, copied into
 * tickets); minted credentials need `key_secret`, the key every replica shares them under.
 */
function compileSharedState(raw: RawConfig, secrets: readonly SecretSpec[], abs: (p: string) => string, err: Report, warn: (p: FieldPath, text: string) => void): SharedStateSpec | null {
  const s = raw.shared_state;
  if (s === undefined) return null;
  const p: FieldPath = ['shared_state'];
  let url: URL | null = null;
  try {
    url = new URL(s.redis.url);
  } catch {
    url = null;
  }
  const ok = url !== null && (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && url.search === '' && url.hash === '';
  if (!ok) err([...p, 'redis', 'url'], `'${s.redis.url}' is not a Redis URL; e.g. redis://127.0.0.1:6379/0 or rediss://redis.internal:6380`);
  if (url !== null && url.password !== '') err([...p, 'redis', 'url'], 'holds a password: put it in the backend and name it in password_secret (a URL ends up in logs and process lists)');
  const db = url === null || url.pathname === '' || url.pathname === '/' ? 0 : Number(url.pathname.slice(1));
  if (!Number.isInteger(db) || db < 0 || db > 15) err([...p, 'redis', 'url'], `'${url?.pathname ?? ''}' is not a database number (0-15)`);
  for (const [k, v] of [['password_secret', s.redis.password_secret], ['key_secret', s.key_secret]] as const) {
    if (v !== undefined && !SECRET_NAME.test(v)) err(k === 'key_secret' ? [...p, k] : [...p, 'redis', k], `'${v}' must be a secret name: the backend secret holding it`);
  }
  const tls = url?.protocol === 'rediss:' || s.redis.tls !== undefined;
  if (url?.protocol === 'redis:' && s.redis.tls !== undefined) err([...p, 'redis', 'tls'], 'needs a rediss:// URL (TLS from the first byte)');
  const host = (url?.hostname ?? '').replace(/^\[|\]$/g, '');
  if (ok && !tls && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)) warn([...p, 'redis', 'url'], `'${s.redis.url}' is plain TCP to another host: the Redis password and the shared counts cross the network readable (minted credentials are encrypted); use rediss://`);
  const minted = secrets.filter((x) => x.sites.some((site) => site.render.kind === 'minted' && site.render.minter.kind !== 'jwt_bearer'));
  if (minted.length > 0 && s.key_secret === undefined) err(p, `needs key_secret: NAME (a backend secret of 32 random bytes or more, the same on every replica): ${minted.map((x) => x.name).join(', ')} mint credentials that replicas share, encrypted under it`, true);
  if (s.on_unavailable === 'local' && s.replicas === undefined) err([...p, 'on_unavailable'], 'local needs replicas: N (each replica then enforces limit ÷ N while Redis is unreachable)');
  return {
    redis: {
      host,
      port: url === null || url.port === '' ? 6379 : Number(url.port),
      db: Number.isInteger(db) ? db : 0,
      username: url === null || url.username === '' ? null : decodeURIComponent(url.username),
      passwordSecret: s.redis.password_secret ?? null,
      tls: tls ? { caFile: s.redis.tls?.ca_file === undefined ? null : abs(s.redis.tls.ca_file), serverName: s.redis.tls?.server_name ?? null } : null,
      prefix: s.redis.prefix ?? 'keyswap:',
    },
    keySecret: s.key_secret ?? null,
    onUnavailable: s.on_unavailable ?? 'refuse',
    replicas: s.replicas ?? 1,
  };
}

/** `usage:`: quotas, each naming only secrets and clients this file has. */
function compileUsage(raw: RawConfig, secrets: readonly SecretSpec[], clients: ReadonlyMap<string, ClientSpec> | null, err: Report): QuotaSpec[] {
  const known = new Set(secrets.map((s) => s.name));
  return Object.entries(raw.usage ?? {}).map(([name, q]) => {
    const p: FieldPath = ['usage', name];
    if (!ROUTE_NAME.test(name)) err(p, `quota name '${name}' must be lower-case letters, digits, '-' or '_' (it is a header value and a metric label)`, true);
    q.secrets?.forEach((s, i) => { if (!known.has(s)) err([...p, 'secrets', i], `'${s}' is not a secret in this file (known: ${[...known].join(', ') || 'none'})`); });
    q.clients?.forEach((c, i) => { if (!clients?.has(c)) err([...p, 'clients', i], `'${c}' is not a client in this file (clients: ${[...(clients?.keys() ?? [])].join(', ') || 'none'})`); });
    const warnAt = q.warn_at === undefined ? 0.9 : typeof q.warn_at === 'number' ? q.warn_at : Number(q.warn_at.slice(0, -1)) / 100;
    if (warnAt > 1) err([...p, 'warn_at'], 'must be at most 100%');
    return { name, secrets: q.secrets ? new Set(q.secrets) : null, clients: q.clients ? new Set(q.clients) : null, limit: q.limit, period: q.period, warnAt };
  });
}

/** `routes: { openai: https://api.openai.com }`: an https origin (no path, no credentials) per lower-case name. */
function compileRoutes(raw: RawConfig, err: Report): Map<string, BaseUrlRoute> {
  const routes = new Map<string, BaseUrlRoute>();
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
    if ((c.token_sha256 === undefined) === (c.spiffe_id === undefined)) {
      err(p, c.token_sha256 === undefined ? 'needs token_sha256 (keyswap client add) or spiffe_id (an agent with an X.509-SVID)' : 'has both token_sha256 and spiffe_id; a client is one or the other', true);
      continue;
    }
    if (c.spiffe_id !== undefined && raw.listen_tls === undefined) err([...p, 'spiffe_id'], 'an agent presents its certificate on the TLS listener: set listen_tls');
    const twin = [...out.values()].find((o) => c.spiffe_id !== undefined && o.spiffeId === c.spiffe_id);
    if (twin !== undefined) err([...p, 'spiffe_id'], `client ${twin.name} has the same spiffe_id: one certificate, one client`);
    out.set(name, { name, tokenSha256: c.token_sha256 ?? null, spiffeId: c.spiffe_id ?? null, secrets: new Set(c.secrets), expiresAtMs });
  }
  return out;
}


