/** A `secrets:` entry compiled: name, placeholder, injector (site and renderer) and bindings, checked field by field. */
import { parseTemplate, templateNames } from './template-parse.js';
import type { Report } from './report.js';
import type { RawBinding, RawInject, RawInjectField, RawSecret } from './schema.js';
import { compileMinted, compileSigned, MINTED_TYPES, SIGNED_TYPES, type MintedType, type SignedType } from './compile-minter.js';
import { siteKey } from './site-key.js';
import type { BackendLocation, Binding, InjectSpec, Renderer, SecretSpec, SourceRef } from './types.js';
import { fieldName, type FieldPath, type YamlSource } from './yaml-source.js';

export const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
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
const SUPPORTED_INJECT = ['header', 'basic', 'query', 'path', 'body', 'websocket_message', 'multi', ...MINTED_TYPES, ...SIGNED_TYPES].join(', ');

export interface SecretContext { readonly src: YamlSource; readonly err: Report; readonly allowWildcardHosts: boolean }

/** One secret: its name, placeholder, injector and bindings, each problem reported at its field. */
export function compileSecret(name: string, raw: RawSecret, ctx: SecretContext): SecretSpec | null {
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
  const sites = compileSites(name, raw.inject, raw.compose, [...base, 'inject'], err);
  if (raw.bindings.length === 0) err([...base, 'bindings'], 'is empty; a secret with no binding can never be used — list at least one {host: …}');
  const bindings = raw.bindings.map((b, i) => compileBinding(b, [...base, 'bindings', i], sub)).filter((b): b is Binding => b !== null);
  // A tool policy reads the body before it goes; a signature is computed over the body as it goes: one or the other.
  raw.bindings.forEach((b, i) => {
    if (b.mcp !== undefined && sites?.some((s) => s.render.kind === 'signed')) err([...base, 'bindings', i, 'mcp'], 'a tool policy cannot guard a signed inject (sigv4, hmac); bind the MCP server with a header credential');
  });
  if (failed || sites === null) return null;
  return { name, placeholder: ph, sites, bindings, honeytoken: raw.honeytoken ?? false, responseScrub: raw.response_scrub ?? 'redact', backend: backendName(raw.backend), location: backendLocation(raw.backend), source: sourceOf(src, base) };
}

/** `backend: NAME` or `backend: { name: NAME, … }`; `default` (or no name) is the unnamed `backend:`. */
export function backendName(raw: RawSecret['backend']): string | null {
  const name = typeof raw === 'string' ? raw : raw?.name;
  return name === undefined || name === DEFAULT_BACKEND ? null : name;
}

export const DEFAULT_BACKEND = 'default';

function backendLocation(raw: RawSecret['backend']): BackendLocation | null {
  if (typeof raw !== 'object' || (raw.path === undefined && raw.field === undefined)) return null;
  return { path: raw.path ?? null, field: raw.field ?? null };
}

/**
 * `inject:` as one site, a list of them, or agent-vault-proxy's `type: multi` with 2–4 `injectors:`. Each site of
 * a list must be a different place, and at most one is the body.
 */
function compileSites(name: string, raw: RawInjectField | readonly RawInject[], compose: readonly string[] | undefined, p: FieldPath, err: Report): SecretSpec['sites'] | null {
  if (!Array.isArray(raw)) {
    const one = raw as RawInjectField;
    if (one.type === 'multi') return compileMulti(name, one, compose, p, err);
    if (one.injectors !== undefined) {
      err([...p, 'injectors'], 'only valid with type: multi (or write inject: as a list of sites)', true);
      return null;
    }
    const site = compileInject(name, one, compose, p, err);
    return site === null ? null : [site];
  }
  return compileList(name, raw, compose, p, err);
}

function compileMulti(name: string, raw: RawInjectField, compose: readonly string[] | undefined, p: FieldPath, err: Report): SecretSpec['sites'] | null {
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (key !== 'type' && key !== 'injectors') {
      err([...p, key], 'not valid for inject type multi; valid keys: type, injectors (each injector has its own)', true);
      ok = false;
    }
  }
  const children = raw.injectors ?? [];
  if (children.length < 2 || children.length > 4) {
    err([...p, 'injectors'], `lists ${children.length} injector${children.length === 1 ? '' : 's'}; multi takes 2 to 4`);
    return null;
  }
  const nested = children.findIndex((c) => c.type === 'multi');
  if (nested >= 0) {
    err([...p, 'injectors', nested, 'type'], 'multi cannot nest: list the leaf injectors (header, basic, query, path, body)');
    return null;
  }
  const sites = compileList(name, children, compose, [...p, 'injectors'], err);
  return ok ? sites : null;
}

function compileList(name: string, raw: readonly RawInject[], compose: readonly string[] | undefined, p: FieldPath, err: Report): SecretSpec['sites'] | null {
  const at = (i: number): string => `${String(p.at(-1))}[${i}]`;
  const sites = raw.map((r, i) => compileInject(name, r, compose, [...p, i], err));
  if (!sites.every((s): s is InjectSpec => s !== null)) return null;
  let ok = true;
  sites.forEach((s, i) => {
    const earlier = sites.findIndex((t) => siteKey(t) === siteKey(s));
    if (earlier < i) {
      err([...p, i], `names the same place as ${at(earlier)} (${siteKey(s)}); each site must be a different place`);
      ok = false;
    }
  });
  const [first, ...rest] = sites;
  return ok && first !== undefined ? [first, ...rest] : null;
}

function compileInject(name: string, raw: RawInject, compose: readonly string[] | undefined, p: FieldPath, err: Report): InjectSpec | null {
  const type = raw.type ?? 'header';
  if ((MINTED_TYPES as readonly string[]).includes(type)) return compileMinted(type as MintedType, raw, compose, p, err);
  if ((SIGNED_TYPES as readonly string[]).includes(type)) return compileSigned(type as SignedType, raw, compose, p, err);
  if (type !== 'header' && type !== 'basic' && type !== 'query' && type !== 'path' && type !== 'body' && type !== 'websocket_message') {
    // Named first, and nothing about its keys: they belong to a type this keyswap does not have.
    err([...p, 'type'], `inject type '${type}' is not one this version of keyswap has (it has: ${SUPPORTED_INJECT})`);
    return null;
  }
  const allowed: Record<string, readonly string[]> = {
    header: ['type', 'header', 'format', 'template'],
    basic: ['type', 'username', 'format', 'template'],
    query: ['type', 'param', 'format', 'template'],
    path: ['type', 'format', 'template'],
    body: ['type', 'content_type', 'format', 'template'],
    websocket_message: ['type', 'format', 'template'],
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
    case 'websocket_message':
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
  raw.mcp?.tools.forEach((t, i) => {
    if (!TOOL_GLOB.test(t)) bad([...p, 'mcp', 'tools', i], `'${t}' is not a tool name or glob: 1 to 128 of A-Z a-z 0-9 _ - . / : and * (any run of characters)`);
  });
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
    approve: approvalOf(raw.approve),
    mcp: raw.mcp === undefined ? null : { tools: raw.mcp.tools },
    source: sourceOf(ctx.src, p),
  };
}

/** Tool names as MCP servers spell them (the spec's recommended set, and ':' some namespacing servers use), with `*`. */
const TOOL_GLOB = /^[A-Za-z0-9_\-./:*]{1,128}$/;

/** `approve: true` takes the defaults: held up to 120 s for an answer, each approval for that request alone. */
function approvalOf(raw: RawBinding['approve']): Binding['approve'] {
  if (raw === undefined || raw === false) return null;
  const set = raw === true ? {} : raw;
  return { timeoutMs: (set.timeout_seconds ?? 120) * 1000, rememberMs: (set.remember_seconds ?? 0) * 1000 };
}

/** No two secrets share a placeholder, and none is part of another's (a substring would match both). */
export function checkPlaceholders(secrets: readonly SecretSpec[], err: Report): void {
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

