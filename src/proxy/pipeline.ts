import { randomUUID } from 'node:crypto';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { AuditEvent, Destination } from '../audit/index.js';
import { applyPlacements, createBodyInjector, InvalidRendering, namesToFetch, renderSecret, type Placement, type RequestParts } from '../inject/index.js';
import { decide, type Declined, type Injection, type RequestFacts } from '../policy/index.js';
import type { ClientSpec } from '../config/index.js';
import type { Secret } from '../secrets/index.js';
import type { Logger } from '../log.js';
import { destinationOf } from './audit-facts.js';
import { endToEndPairs, flatten } from './headers.js';
import { OUTCOMES, Refusal, type RefusalCode } from './refusal.js';
import { relay } from './relay.js';
import { echoForms, EchoBlocked, Scrubber, type ScrubTarget } from './scrubber.js';
import type { Snapshot } from './snapshot.js';

/** What the connection tells about a request's destination (the CONNECT target, or the absolute URL). */
export interface ConnFacts {
  readonly scheme: 'https' | 'http';
  readonly connectHost: string;
  readonly connectPort: number;
  readonly sni: string | null;
  /** The agent that authenticated this connection (or request), when `clients:` is configured. */
  readonly client: ClientSpec | null;
  /**
   * Base-URL mode: the route's authority. It replaces the Host header the agent sent (which names keyswap), so
   * the destination check and the upstream both see the route's host, never one the agent chose.
   */
  readonly routeAuthority?: string;
}

export interface PipelineDeps {
  readonly snapshot: () => Snapshot;
  readonly log: Logger;
  readonly now: () => number;
}

export interface RequestContext {
  readonly id: string;
  readonly client: string | null;
  readonly method: string;
  readonly destination: Destination;
  readonly snap: Snapshot;
}

/**
 * The request path of DESIGN.md §1 for one request on a decrypted (or plain-http) connection: facts → decide →
 * secrets → durable audit → build → upstream. Any failure before the upstream request exists ends in a refusal
 * and nothing is sent (K4); once the response head is out, a failure breaks the transfer instead.
 */
export async function handleRequest(req: IncomingMessage, res: ServerResponse, conn: ConnFacts, target: string, deps: PipelineDeps): Promise<void> {
  const startedMs = deps.now();
  const snap = deps.snapshot();
  const queryAt = target.indexOf('?');
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  const query = queryAt < 0 ? '' : target.slice(queryAt + 1);
  const method = req.method ?? 'GET';
  const ctx: RequestContext = { id: randomUUID(), client: conn.client?.name ?? null, method, destination: destinationOf(conn.connectHost, conn.connectPort, path), snap };
  try {
    const sent = endToEndPairs(req.rawHeaders);
    const authority = conn.routeAuthority;
    const headers: [string, string][] = authority === undefined ? sent : [['host', authority], ...sent.filter(([name]) => name !== 'host')];
    const facts: RequestFacts = {
      scheme: conn.scheme,
      connectHost: conn.connectHost,
      connectPort: conn.connectPort,
      sni: conn.sni,
      hostHeader: authority ?? req.headers.host,
      method,
      path,
      query,
      headers,
      client: conn.client,
      contentType: mediaType(req.headers['content-type']),
    };
    if (!path.startsWith('/')) throw new Refusal('bad_request');
    const verdict = decide(facts, snap.policy);
    if (verdict.kind === 'deny') throw new Refusal(verdict.reason);

    enforceRates(verdict.injections, snap, ctx, Date.now());
    // Wall-clock time for rendering (totp reads it); deps.now is a monotonic clock for durations only.
    const { placements, scrub } = await fetchAndRender(verdict.injections, snap, Date.now());
    const parts: RequestParts = { headers, path, query };
    applyPlacements(parts, placements);
    // K5: every decision of this request is durable before the upstream request object even exists.
    await recordDecisions(ctx, verdict.injections, verdict.declined);
    if (res.destroyed || req.socket.destroyed) return; // the agent left while we waited: send nothing
    const scrubber = new Scrubber(scrub);
    const body = verdict.bodyInjectors.length > 0 && hasBody(req) ? bodyInjector(verdict.bodyInjectors, snap, ctx, scrubber, deps) : null;
    // A substituted body changes length: it goes out chunked.
    if (body !== null) parts.headers = parts.headers.filter(([name]) => name !== 'content-length');
    forward(req, res, conn, queryAt < 0 ? parts.path : `${parts.path}?${parts.query}`, parts, body, scrubber, ctx, startedMs, deps);
  } catch (err) {
    refuse(res, err, ctx, deps.log);
  }
}

interface Rendered { readonly placements: Placement[]; readonly scrub: ScrubTarget[] }

/**
 * Echo forms per secret object: the cache hands out the same object until the value expires, so the encodings
 * are computed once per fetch, not per request (they were 4 % of keyswap's CPU at concurrency 32). A WeakMap:
 * the forms go when the cache drops the secret.
 */
const echoFormsCache = new WeakMap<Secret, readonly string[]>();
function formsOf(secret: Secret): readonly string[] {
  let forms = echoFormsCache.get(secret);
  if (forms === undefined) {
    forms = echoForms(secret.reveal());
    echoFormsCache.set(secret, forms);
  }
  return forms;
}

async function fetchAndRender(injections: readonly Injection[], snap: Snapshot, nowMs: number): Promise<Rendered> {
  if (injections.length === 0) return { placements: [], scrub: [] };
  try {
    const rendered = await Promise.all(
      injections.map(async (inj) => {
        const names = namesToFetch(inj.secret);
        const secrets = await Promise.all(names.map((n) => snap.secrets.get(n)));
        const values = new Map(names.map((n, i) => [n, secrets[i]?.reveal() ?? ''] as const));
        const text = renderSecret(inj.secret, values, nowMs);
        const scrub: ScrubTarget | null =
          inj.secret.responseScrub === 'off'
            ? null
            : { secretName: inj.secret.name, placeholder: inj.secret.placeholder, forms: secrets.flatMap((s) => formsOf(s)), rendered: text, mode: inj.secret.responseScrub };
        return { placement: { secret: inj.secret, text }, scrub };
      }),
    );
    return { placements: rendered.map((r) => r.placement), scrub: rendered.flatMap((r) => (r.scrub ? [r.scrub] : [])) };
  } catch (err) {
    throw new Refusal('secret_unavailable', { cause: err });
  }
}

/**
 * The body stream for body injectors: each secret is fetched, rendered, added to the response scrubber and its
 * decision made durable at its first occurrence, before any substituted byte leaves (K5). A failure there aborts
 * the upstream request mid-body, so the upstream never sees the secret, and the agent gets the refusal.
 */
function bodyInjector(injectors: readonly Injection[], snap: Snapshot, ctx: RequestContext, scrubber: Scrubber, deps: PipelineDeps): Transform {
  const byName = new Map(injectors.map((i) => [i.secret.name, i]));
  return createBodyInjector(
    injectors.map((i) => ({ secretName: i.secret.name, placeholder: i.secret.placeholder })),
    async (name) => {
      const inj = byName.get(name);
      if (inj === undefined) throw new Refusal('internal');
      const { placements, scrub } = await fetchAndRender([inj], snap, Date.now());
      for (const t of scrub) scrubber.add(t);
      await recordDecisions(ctx, [inj], []);
      return placements[0]?.text ?? '';
    },
  );
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? '0') > 0;
}

function mediaType(header: string | undefined): string | null {
  return header === undefined ? null : (header.split(';')[0] ?? '').trim().toLowerCase() || null;
}

/** Binding `rate:` limits, per client, secret and binding: over the limit, the request is refused with 429. */
function enforceRates(injections: readonly Injection[], snap: Snapshot, ctx: RequestContext, nowMs: number): void {
  for (const inj of injections) {
    const rate = inj.secret.bindings[inj.bindingIndex]?.rate;
    if (!rate) continue;
    const taken = snap.limiter.take(`${ctx.client ?? ''}|${inj.secret.name}|${inj.bindingIndex}`, rate, nowMs);
    if (!taken.ok) throw new Refusal('rate_limited', { retryAfterSeconds: Math.max(1, Math.ceil(taken.retryAfterMs / 1000)) });
  }
}

async function recordDecisions(ctx: RequestContext, injections: readonly Injection[], declined: readonly Declined[]): Promise<void> {
  if (injections.length === 0 && declined.length === 0) return;
  const base = { type: 'inject_decision', request_id: ctx.id, method: ctx.method, destination: ctx.destination, client: ctx.client } as const;
  const events: AuditEvent[] = [
    ...injections.map((i) => ({ ...base, decision: 'allowed', reason: 'binding_matched', secret_name: i.secret.name }) as const),
    ...declined.map((d) => ({ ...base, decision: 'denied', reason: d.reason, secret_name: d.secret.name }) as const),
    // A honeytoken's placeholder was used at all: the agent is reading what it should not (fsynced like the rest).
    ...injections.filter((i) => i.secret.honeytoken).map((i) => ({ ...base, type: 'honeytoken_triggered', decision: 'allowed', secret_name: i.secret.name }) as const),
    ...declined.filter((d) => d.secret.honeytoken).map((d) => ({ ...base, type: 'honeytoken_triggered', decision: 'denied', secret_name: d.secret.name }) as const),
  ];
  try {
    await Promise.all(events.map((e) => ctx.snap.audit.append(e)));
  } catch (err) {
    throw new Refusal('audit_unavailable', { cause: err });
  }
}

function forward(
  req: IncomingMessage, res: ServerResponse, conn: ConnFacts, upstreamPath: string, parts: RequestParts,
  body: Transform | null, scrubber: Scrubber, ctx: RequestContext, startedMs: number, deps: PipelineDeps,
): void {
  const upReq: ClientRequest = ctx.snap.upstream.request(
    { scheme: conn.scheme, host: conn.connectHost, port: conn.connectPort },
    { method: ctx.method, path: upstreamPath, headers: flatten(parts.headers) },
  );
  // The agent leaving at any point cancels the upstream request: nothing keeps running on its behalf.
  res.once('close', () => {
    if (!res.writableFinished) upReq.destroy();
  });
  let failed = false;
  const fail = (err: Error): void => {
    if (failed) return;
    failed = true;
    upReq.destroy();
    if (!(err instanceof Refusal) && (!req.complete || res.destroyed)) {
      deps.log.info({ request_id: ctx.id }, 'agent went away before the response');
      return;
    }
    refuse(res, err instanceof Refusal ? err : upstreamRefusal(err), ctx, deps.log);
  };
  const sent = (err: Error | null | undefined): void => {
    if (err) fail(err);
  };
  relay(body === null ? [req, upReq] : [req, body, upReq], sent);
  // An upstream failure can also come after the body was sent (a hang-up before any response).
  upReq.on('error', fail);
  upReq.once('response', (upRes) => {
    let head: ResponseHead;
    try {
      head = responseHead(upRes, scrubber);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, head.headers);
    } catch (err) {
      upRes.destroy();
      const refusal = err instanceof EchoBlocked ? new Refusal('upstream_echoed_secret', { cause: err }) : new Refusal('upstream_failed', { cause: err });
      if (err instanceof EchoBlocked) recordScrubs(ctx, new Map([[err.secretName, 1]]), 'blocked', deps.log);
      refuse(res, refusal, ctx, deps.log);
      return;
    }
    let bytes = 0;
    upRes.on('data', (chunk: Buffer) => { bytes += chunk.length; });
    const done = (err: Error | null | undefined): void => {
      // A reset mid-body must reach the agent as a broken transfer, never as a clean end (DESIGN.md §2).
      if (err) res.socket?.destroy();
      if (err instanceof EchoBlocked) recordScrubs(ctx, new Map([[err.secretName, 1]]), 'blocked', deps.log);
      if (scrubber.counts.size > 0) recordScrubs(ctx, scrubber.counts, 'redacted', deps.log);
      const event: AuditEvent = {
        type: 'upstream_response', request_id: ctx.id, method: ctx.method, destination: ctx.destination, client: ctx.client,
        status: upRes.statusCode ?? 0, bytes, ms: Math.round(deps.now() - startedMs), complete: !err,
      };
      ctx.snap.audit.appendLazy(event).catch((e: unknown) => deps.log.error({ err: errorSummary(e), request_id: ctx.id }, 'audit append failed'));
    };
    if (head.decoder === null && scrubber.isEmpty) relay([upRes, res], done);
    else if (head.decoder === null) relay([upRes, scrubber.stream(), res], done);
    else relay([upRes, head.decoder, scrubber.stream(), res], done);
  });
}

interface ResponseHead { readonly headers: string[]; readonly decoder: Transform | null }

/**
 * The response head the agent sees. When a secret was injected, header values are scrubbed, and a compressed
 * body is decoded so the scrubber can read it: it is re-sent uncompressed, and without a length, since scrubbing
 * may change it.
 */
function responseHead(upRes: IncomingMessage, scrubber: Scrubber): ResponseHead {
  const pairs = endToEndPairs(upRes.rawHeaders);
  if (scrubber.isEmpty) return { headers: flatten(pairs), decoder: null };
  const encoding = (upRes.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : null;
  const out: [string, string][] = [];
  for (const [name, value] of pairs) {
    if (name === 'content-length') continue;
    if (decoder !== null && name === 'content-encoding') continue;
    out.push([name, scrubber.scrubText(value)]);
  }
  return { headers: flatten(out), decoder };
}

function recordScrubs(ctx: RequestContext, counts: ReadonlyMap<string, number>, action: 'redacted' | 'blocked', log: Logger): void {
  for (const [secretName, count] of counts) {
    const event: AuditEvent = { type: 'response_scrubbed', request_id: ctx.id, method: ctx.method, destination: ctx.destination, client: ctx.client, secret_name: secretName, count, action };
    ctx.snap.audit.append(event).catch((e: unknown) => log.error({ err: errorSummary(e), request_id: ctx.id }, 'audit append failed'));
  }
}

function upstreamRefusal(err: Error & { code?: string }): Refusal {
  const code = err.code ?? '';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return new Refusal('upstream_timeout', { cause: err });
  if (/CERT|SIGNATURE|ISSUER|ALTNAME|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return new Refusal('upstream_untrusted', { cause: err });
  return new Refusal('upstream_failed', { cause: err });
}

/** The one place a request is refused: audit it, log the cause (never a value), answer from the table. */
export function refuse(res: ServerResponse, err: unknown, ctx: RequestContext, log: Logger): void {
  const code: RefusalCode = err instanceof Refusal ? err.code : err instanceof InvalidRendering ? 'secret_unavailable' : 'internal';
  const [status, body] = OUTCOMES[code];
  const cause = err instanceof Refusal ? err.cause : err;
  log.warn({ request_id: ctx.id, code, cause: errorSummary(cause) }, 'request refused');
  const event: AuditEvent = {
    type: 'deny', request_id: ctx.id, method: ctx.method, destination: ctx.destination, client: ctx.client,
    decision: 'denied', reason: code, status,
  };
  ctx.snap.audit.append(event).catch((e: unknown) => log.error({ err: errorSummary(e), request_id: ctx.id }, 'audit append failed'));
  if (res.headersSent) {
    res.socket?.destroy();
    return;
  }
  if (res.destroyed) return;
  const retry = err instanceof Refusal && err.retryAfterSeconds !== null ? { 'retry-after': String(err.retryAfterSeconds) } : {};
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close', ...retry });
  res.end(body);
}

/**
 * What a log line may say about an error: its class, code and message. Messages of keyswap's own errors carry
 * names, never values; InvalidRendering names only the secret.
 */
export function errorSummary(err: unknown): { type: string; code?: string; message: string } | undefined {
  if (err === undefined) return undefined;
  if (err instanceof InvalidRendering) return { type: err.name, message: err.message };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { type: err.name, ...(typeof code === 'string' ? { code } : {}), message: err.message };
  }
  return { type: typeof err, message: 'non-error thrown' };
}
