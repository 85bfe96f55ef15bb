import {
  ALL_METHODS, BINDINGS, CLIENT_SECRETS, HTTPS_HOST, PLACEHOLDERS, PLAIN_HOST, SECRET_NAMES,
  type ClientName, type SecretName,
} from './prop-harness.js';
import type { Framing, ResponseSpec, UpstreamRequestRecord } from './recording-upstream.js';

/**
 * The generated exchanges of the no-leak property test, how they become raw request bytes, and the oracle: what
 * keyswap's intended behaviour (DESIGN.md, docs/attacks.md) says the upstream must receive for each. Written from
 * the bindings as data (prop-harness.ts), never from src/.
 */

export type Method = (typeof ALL_METHODS)[number];
export type RequestFraming = 'none' | 'content-length' | 'chunked' | 'te:CHUNKED' | 'cl+te' | 'te:gzip, chunked';
export type PathOddity = 'none' | 'dotdot' | 'semicolon' | 'pct25' | 'pct2e' | 'bad-utf8';
export type DupHeader = 'host' | 'content-length' | 'transfer-encoding' | 'authorization' | 'x-api-key';
export type BodyKind = 'empty' | 'text' | 'json-f' | 'json-a' | 'smuggle';
export type ContentType = 'none' | 'application/json' | 'Application/JSON; charset=utf-8' | 'text/plain';
export type AcceptEncoding = 'none' | 'identity' | 'gzip' | 'br' | 'zstd' | 'gzip, gzip';
export type Hop = 'none' | 'keep-alive' | 'x-drop' | 'te-trailers' | 'close';
export type AuthSlot = { readonly kind: 'none' } | { readonly kind: 'bearer-a' } | { readonly kind: 'basic-c'; readonly user: string } | { readonly kind: 'other' };

export interface RequestSpec {
  readonly method: Method;
  readonly scope: 'v1' | 'v2';
  readonly segs: readonly string[];
  readonly oddity: PathOddity;
  readonly auth: AuthSlot;
  readonly apiKeyB: boolean;
  readonly queryD: boolean;
  readonly pathE: boolean;
  readonly gKey: boolean;
  /** G_KEY's second site: the query parameter g. */
  readonly gQuery: boolean;
  /** A placeholder put in a header that is no secret's site: it must travel verbatim. */
  readonly misplaced: SecretName | null;
  readonly body: BodyKind;
  readonly contentType: ContentType;
  readonly framing: RequestFraming;
  readonly chunks: readonly number[];
  readonly dups: readonly DupHeader[];
  readonly nameCase: 'lower' | 'title' | 'upper' | 'mixed';
  readonly hostForm: 'exact' | 'upper' | 'port';
  readonly acceptEncoding: AcceptEncoding;
  readonly hop: Hop;
  readonly respond: ResponseSpec;
}

export interface ConnSpec {
  readonly kind: 'connect' | 'plain';
  readonly client: ClientName;
  readonly pipelined: boolean;
  readonly requests: readonly RequestSpec[];
}

/** What the upstream must receive: end-to-end headers (lower-case names, no framing headers), path, body. */
export interface Expectation {
  readonly method: string;
  readonly url: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  readonly framing: 'content-length' | 'chunked';
  /** A body injector was active: a Content-Length body may arrive re-framed as chunked. */
  readonly reframeOk: boolean;
  readonly injected: readonly SecretName[];
}

export interface BuiltRequest {
  readonly id: string;
  readonly spec: RequestSpec;
  readonly host: string;
  readonly port: number;
  readonly client: ClientName;
  readonly bytes: Buffer;
  /** Why keyswap may refuse this request (or forward it verbatim, without any secret); empty: well-formed. */
  readonly ambiguous: readonly string[];
  readonly substituted: Expectation;
  readonly verbatim: Expectation;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings']);
export const KEYSWAP_ACCEPT_ENCODING = 'gzip, deflate, br';

function caseName(name: string, style: RequestSpec['nameCase'], i: number): string {
  switch (style) {
    case 'lower': return name.toLowerCase();
    case 'upper': return name.toUpperCase();
    case 'title': return name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
    case 'mixed': return [...name].map((c, k) => ((k + i) % 2 === 0 ? c.toUpperCase() : c.toLowerCase())).join('');
  }
}

function mediaType(ct: ContentType): string | null {
  return ct === 'none' ? null : (ct.split(';')[0] ?? '').trim().toLowerCase();
}

/** Is `secret` allowed for this request by some binding (host, port, method, path glob /v1/**, plaintext) and the client? */
export function isAllowed(secret: SecretName, r: { host: string; port: number; method: string; path: string; isOddPath: boolean; client: ClientName; scheme: 'https' | 'http' }): boolean {
  if (!CLIENT_SECRETS[r.client].includes(secret)) return false;
  return BINDINGS[secret].some((b) =>
    b.host === r.host && b.port === r.port && (b.methods === null || b.methods.includes(r.method))
    && (!b.v1Only || (r.path.startsWith('/v1/') && !r.isOddPath)) && (r.scheme === 'https' || b.allowPlaintext));
}

function chunked(body: Buffer, sizes: readonly number[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  let i = 0;
  while (at < body.length) {
    const n = Math.min(sizes[i % sizes.length] ?? 8, body.length - at);
    out.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
    i++;
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

export function buildRequest(spec: RequestSpec, conn: ConnSpec, id: string, isLast: boolean, secrets: ReadonlyMap<SecretName, string>, tokens: Readonly<Record<ClientName, string>>): BuiltRequest {
  const https = conn.kind === 'connect';
  const host = https ? HTTPS_HOST : PLAIN_HOST;
  const port = https ? 443 : 80;
  const ambiguous: string[] = [];
  const secret = (n: SecretName): string => secrets.get(n) ?? '';

  // Path and query.
  const segs = [spec.scope, ...(spec.pathE ? [PLACEHOLDERS.E_KEY] : []), ...spec.segs];
  switch (spec.oddity) {
    case 'none': break;
    case 'dotdot': segs.splice(1, 0, 'x', '..'); break;
    case 'semicolon': segs.push(`${segs.pop() ?? ''};p=1`); break;
    case 'pct25': segs.push(`${segs.pop() ?? ''}%2541`); break;
    case 'pct2e': segs.splice(1, 0, 'x', '%2e%2e'); break;
    case 'bad-utf8': segs.push(`${segs.pop() ?? ''}%C3%28`); break;
  }
  // An ambiguous path is out of every path-scoped binding (keyswap forwards it without those secrets); a binding
  // with no path scope still applies.
  const path = `/${segs.join('/')}`;
  const query = [...(spec.queryD ? [`key=${PLACEHOLDERS.D_KEY}`] : []), ...(spec.gQuery ? [`g=${PLACEHOLDERS.G_KEY}`] : []), 'q=1'].join('&');

  // Body and framing. Framing 'none' cannot carry a body (its bytes would be the agent's own next request).
  const bodyText = spec.framing === 'none' ? '' : {
    empty: '',
    text: `hello ${id}`,
    'json-f': `{"token":"${PLACEHOLDERS.F_KEY}","id":"${id}"}`,
    'json-a': `{"token":"${PLACEHOLDERS.A_KEY}"}`,
    smuggle: `GET /v1/smuggled HTTP/1.1\r\nHost: ${host}\r\nx-test-id: smuggled-${id}\r\n\r\n`,
  }[spec.body];
  const body = Buffer.from(bodyText, 'latin1');
  const usesTe = spec.framing === 'chunked' || spec.framing === 'te:CHUNKED' || spec.framing === 'cl+te' || spec.framing === 'te:gzip, chunked';
  const usesCl = spec.framing === 'content-length' || spec.framing === 'cl+te';
  if (spec.framing === 'cl+te') ambiguous.push('Content-Length and Transfer-Encoding');
  if (spec.framing === 'te:gzip, chunked') ambiguous.push('Transfer-Encoding other than chunked');
  if (spec.method === 'HEAD' && (usesTe || body.length > 0)) ambiguous.push('HEAD with a body');

  // Headers, in the order sent. [name as sent, value]; hop marks a hop-by-hop header.
  const headers: [string, string][] = [];
  const hostValue = spec.hostForm === 'exact' ? host : spec.hostForm === 'upper' ? host.toUpperCase() : `${host}:${port}`;
  headers.push(['host', hostValue]);
  if (spec.dups.includes('host')) {
    headers.push(['host', 'evil.example.test']);
    ambiguous.push('duplicate Host');
  }
  headers.push(['x-test-id', id]);
  headers.push(['x-test-respond', Buffer.from(JSON.stringify(spec.respond)).toString('base64url')]);
  const authValue = spec.auth.kind === 'bearer-a' ? `Bearer ${PLACEHOLDERS.A_KEY}`
    : spec.auth.kind === 'basic-c' ? `Basic ${Buffer.from(`${spec.auth.user}:${PLACEHOLDERS.C_KEY}`, 'latin1').toString('base64')}`
    : spec.auth.kind === 'other' ? 'Bearer not-a-placeholder' : null;
  if (authValue !== null) headers.push(['authorization', authValue]);
  if (spec.dups.includes('authorization')) {
    headers.push(['authorization', `Bearer ${PLACEHOLDERS.A_KEY}`]);
    if (authValue !== null) ambiguous.push('duplicate Authorization');
  }
  if (spec.apiKeyB) headers.push(['x-api-key', PLACEHOLDERS.B_KEY]);
  if (spec.dups.includes('x-api-key')) {
    headers.push(['x-api-key', PLACEHOLDERS.B_KEY]);
    if (spec.apiKeyB) ambiguous.push('duplicate x-api-key');
  }
  if (spec.gKey) headers.push(['x-g-key', PLACEHOLDERS.G_KEY]);
  if (spec.misplaced !== null) headers.push(['x-note', PLACEHOLDERS[spec.misplaced]]);
  if (spec.contentType !== 'none') headers.push(['content-type', spec.contentType]);
  if (spec.acceptEncoding !== 'none') headers.push(['accept-encoding', spec.acceptEncoding]);
  const hop = spec.hop === 'close' && !isLast ? 'none' : spec.hop;
  if (hop === 'keep-alive') headers.push(['connection', 'keep-alive']);
  if (hop === 'close') headers.push(['connection', 'close']);
  if (hop === 'x-drop') headers.push(['connection', 'x-drop'], ['x-drop', '1']);
  if (hop === 'te-trailers') headers.push(['te', 'trailers'], ['connection', 'TE']);
  if (!https) headers.push(['proxy-authorization', `Basic ${Buffer.from(`${conn.client}:${tokens[conn.client]}`).toString('base64')}`]);
  if (usesCl) headers.push(['content-length', String(body.length)]);
  if (usesCl && spec.dups.includes('content-length')) {
    headers.push(['content-length', String(body.length)]);
    ambiguous.push('duplicate Content-Length');
  }
  if (usesTe) headers.push(['transfer-encoding', spec.framing === 'te:CHUNKED' ? 'CHUNKED' : spec.framing === 'te:gzip, chunked' ? 'gzip, chunked' : 'chunked']);
  if (usesTe && spec.dups.includes('transfer-encoding')) {
    headers.push(['transfer-encoding', 'chunked']);
    ambiguous.push('duplicate Transfer-Encoding');
  }
  const target = `${https ? '' : `http://${host}`}${path}?${query}`;
  const head = `${spec.method} ${target} HTTP/1.1\r\n${headers.map(([n, v], i) => `${caseName(n, spec.nameCase, i)}: ${v}\r\n`).join('')}\r\n`;
  const bytes = Buffer.concat([Buffer.from(head, 'latin1'), usesTe ? chunked(body, spec.chunks) : body]);

  // The oracle. Which secrets sit at their own site, and which of those a binding allows.
  const facts = { host, port, method: spec.method, path, isOddPath: spec.oddity !== 'none', client: conn.client, scheme: https ? 'https' as const : 'http' as const };
  const hasBody = usesTe || body.length > 0;
  const bodyInjector = isAllowed('F_KEY', facts) && mediaType(spec.contentType) === 'application/json' && hasBody;
  const atSite: SecretName[] = [];
  // A "duplicate" without an original is the header's only occurrence: its placeholder sits at its site.
  if (spec.auth.kind === 'bearer-a' || (spec.auth.kind === 'none' && spec.dups.includes('authorization'))) atSite.push('A_KEY');
  if (spec.apiKeyB || spec.dups.includes('x-api-key')) atSite.push('B_KEY');
  if (spec.auth.kind === 'basic-c') atSite.push('C_KEY');
  if (spec.queryD) atSite.push('D_KEY');
  if (spec.pathE) atSite.push('E_KEY');
  if (spec.gKey || spec.gQuery) atSite.push('G_KEY');
  if (bodyInjector && bodyText.includes(PLACEHOLDERS.F_KEY)) atSite.push('F_KEY');
  const injected = atSite.filter((s) => isAllowed(s, facts));

  const endToEnd = (pairs: readonly [string, string][]): [string, string][] => {
    const listed = new Set(pairs.filter(([n]) => n === 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())));
    return pairs.filter(([n]) => !HOP_BY_HOP.has(n) && !listed.has(n) && n !== 'content-length');
  };
  const expectation = (inject: readonly SecretName[]): Expectation => {
    const has = (s: SecretName): boolean => inject.includes(s);
    const sub = headers.map(([n, v]): [string, string] => {
      if (n === 'authorization' && has('A_KEY') && v === `Bearer ${PLACEHOLDERS.A_KEY}`) return [n, `Bearer ${secret('A_KEY')}`];
      if (n === 'authorization' && has('C_KEY') && v === authValue && spec.auth.kind === 'basic-c') return [n, `Basic ${Buffer.from(`${spec.auth.user}:${secret('C_KEY')}`, 'latin1').toString('base64')}`];
      if (n === 'x-api-key' && has('B_KEY')) return [n, secret('B_KEY')];
      if (n === 'x-g-key' && has('G_KEY')) return [n, secret('G_KEY')];
      return [n, v];
    });
    const p = has('E_KEY') ? path.split(PLACEHOLDERS.E_KEY).join(encodeURIComponent(secret('E_KEY'))) : path;
    // A secret with two sites is written at each one where its placeholder was found (G_KEY: x-g-key and ?g=).
    const qd = has('D_KEY') ? query.replace(`key=${PLACEHOLDERS.D_KEY}`, `key=${encodeURIComponent(secret('D_KEY'))}`) : query;
    const q = has('G_KEY') ? qd.replace(`g=${PLACEHOLDERS.G_KEY}`, `g=${encodeURIComponent(secret('G_KEY'))}`) : qd;
    const b = has('F_KEY') ? Buffer.from(bodyText.split(PLACEHOLDERS.F_KEY).join(secret('F_KEY')), 'latin1') : body;
    return { method: spec.method, url: `${p}?${q}`, headers: endToEnd(sub), body: b, framing: usesTe ? 'chunked' : 'content-length', reframeOk: bodyInjector, injected: inject };
  };
  return { id, spec, host, port, client: conn.client, bytes, ambiguous, substituted: expectation(injected), verbatim: expectation([]) };
}

function canonHost(v: string, port: number): string {
  const lower = v.toLowerCase();
  return lower.endsWith(`:${port}`) ? lower.slice(0, -`:${port}`.length) : lower;
}

/** null when `rec` is exactly `exp` (modulo what keyswap may normalise), else what differs. */
export function compareUpstream(rec: UpstreamRequestRecord, exp: Expectation, port: number): string | null {
  const problems: string[] = [];
  if (rec.method !== exp.method) problems.push(`method ${rec.method} ≠ ${exp.method}`);
  if (rec.url !== exp.url) problems.push(`url ${JSON.stringify(rec.url)} ≠ ${JSON.stringify(exp.url)}`);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rec.rawHeaders.length; i += 2) pairs.push([(rec.rawHeaders[i] ?? '').toLowerCase(), rec.rawHeaders[i + 1] ?? '']);
  const listed = new Set(pairs.filter(([n]) => n === 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())));
  let got = pairs.filter(([n]) => !HOP_BY_HOP.has(n) && !listed.has(n) && n !== 'content-length');
  let want = [...exp.headers];
  // keyswap may set Host to the canonical authority and Accept-Encoding to its own choice.
  const norm = (xs: readonly (readonly [string, string])[]): string[] => xs.map(([n, v]) => JSON.stringify([n, n === 'host' ? canonHost(v, port) : v])).sort();
  const gotAe = got.filter(([n]) => n === 'accept-encoding').map(([, v]) => v);
  if (gotAe.length === 1 && gotAe[0] === KEYSWAP_ACCEPT_ENCODING) {
    got = got.filter(([n]) => n !== 'accept-encoding');
    want = want.filter(([n]) => n !== 'accept-encoding');
  }
  const g = norm(got);
  const w = norm(want);
  if (g.join('\n') !== w.join('\n')) {
    const missing = w.filter((x) => !g.includes(x));
    const extra = g.filter((x) => !w.includes(x));
    problems.push(`headers: missing ${missing.join(' ') || '-'}; unexpected ${extra.join(' ') || '-'}`);
  }
  if (!rec.complete) problems.push('body never completed upstream');
  else if (!rec.body.equals(exp.body)) problems.push(`body ${JSON.stringify(rec.body.toString('latin1').slice(0, 200))} ≠ ${JSON.stringify(exp.body.toString('latin1').slice(0, 200))}`);
  problems.push(...framingProblems(rec.framing, exp));
  return problems.length === 0 ? null : problems.join('; ');
}

function framingProblems(f: Framing, exp: Expectation): string[] {
  if (exp.body.length === 0) {
    if (f.kind === 'content-length' && f.length !== '0') return [`empty body framed as content-length ${f.length}`];
    if (f.kind === 'chunked' && f.te.toLowerCase() !== 'chunked') return [`transfer-encoding ${f.te}`];
    return [];
  }
  if (exp.framing === 'content-length') {
    if (f.kind === 'content-length' && f.length === String(exp.body.length)) return [];
    if (f.kind === 'chunked' && exp.reframeOk && f.te.toLowerCase() === 'chunked') return [];
    return [`framing ${JSON.stringify(f)} for a content-length body of ${exp.body.length}`];
  }
  if (f.kind === 'chunked' && f.te.toLowerCase() === 'chunked') return [];
  return [`framing ${JSON.stringify(f)} for a chunked body`];
}

/** The secrets whose real value occurs in what the upstream received (URL raw or decoded, headers, Basic, body). */
export function secretsIn(rec: UpstreamRequestRecord, secrets: ReadonlyMap<SecretName, string>): { head: SecretName[]; body: SecretName[] } {
  const texts = [rec.url, safeDecode(rec.url), ...rec.rawHeaders];
  for (let i = 0; i + 1 < rec.rawHeaders.length; i += 2) {
    const v = rec.rawHeaders[i + 1] ?? '';
    if (/^basic /i.test(v)) texts.push(Buffer.from(v.slice(6).trim(), 'base64').toString('latin1'));
  }
  const head = texts.join('\n');
  const body = rec.body.toString('latin1');
  return {
    head: SECRET_NAMES.filter((n) => head.includes(secrets.get(n) ?? '\0')),
    body: SECRET_NAMES.filter((n) => body.includes(Buffer.from(secrets.get(n) ?? '\0', 'utf8').toString('latin1'))),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
