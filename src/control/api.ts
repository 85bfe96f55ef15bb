import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ChainHead } from '../audit/index.js';
import type { Snapshot } from '../proxy/index.js';
import type { DecisionFeed } from './feed.js';
import { ControlError, type Actor, type Operator } from './operator.js';

/** What `audit verify` found the last time the console or CLI asked, kept for the audit view. */
export interface AuditCheck { readonly at: string; readonly intact: boolean; readonly records: number; readonly head: string | null; readonly findings: readonly string[] }

/** `secret`: explain the request as if it carried this secret's placeholder at its site (the console holds none). */
export interface ExplainQuery { readonly method: string; readonly url: string; readonly headers: readonly [string, string][]; readonly client: string | null; readonly secret: string | null }

export interface ControlDeps {
  readonly operator: Operator;
  readonly feed: DecisionFeed;
  /** The configuration in force, with the operator's clients (the proxy's own view). */
  readonly snapshot: () => Snapshot;
  readonly audit: {
    readonly path: string;
    head(): ChainHead;
    healthy(): boolean;
    /** The last head anchored outside the log (state_dir/audit.head). */
    anchor(): Promise<ChainHead | null>;
    verify(): Promise<AuditCheck>;
  };
  /** `keyswap explain`'s answer, lines of text (no value, no placeholder). */
  readonly explain: (q: ExplainQuery) => readonly string[];
  readonly version: string;
  /** A one-time console login URL (its token in the fragment); a ControlError where no console is configured. */
  readonly loginUrl?: () => string;
}

const MAX_BODY = 64 * 1024;
/** A viewer whose stream backs up past this is dropped (it reconnects and starts from the recent rows). */
const MAX_BACKLOG = 1024 * 1024;

const lockdownBody = z.strictObject({ on: z.boolean(), reason: z.string().max(500).nullable().optional() });
const sessionBody = z.strictObject({ parent: z.string().min(1), secrets: z.array(z.string().min(1)).min(1).nullable().optional(), ttl_seconds: z.number().int().positive().max(30 * 86_400).nullable().optional(), command: z.string().max(2000) });
const approveBody = z.strictObject({ remember_seconds: z.number().int().min(0).max(30 * 86_400).nullable().optional() });
const explainBody = z.strictObject({ method: z.string().min(1).max(20), url: z.string().min(1).max(4000), headers: z.array(z.tuple([z.string(), z.string()])).max(50).optional(), client: z.string().nullable().optional(), secret: z.string().nullable().optional() });

/**
 * The control API: one handler for the CLI (the unix socket; actor `cli`) and the console (actor `ui`, after its
 * own login and CSRF checks). JSON in and out; every change goes through the Operator, which audits it.
 */
export async function handleControl(req: IncomingMessage, res: ServerResponse, path: string, actor: Actor, deps: ControlDeps): Promise<void> {
  try {
    const method = req.method ?? 'GET';
    const route = `${method} ${path.split('?', 1)[0] ?? ''}`;
    let m: RegExpExecArray | null;
    if (route === 'GET /v1/status') return json(res, 200, await status(deps));
    if (route === 'GET /v1/events') return events(req, res, deps.feed);
    if (route === 'GET /v1/approvals') return json(res, 200, { approvals: deps.operator.approvals.list(), access_requests: deps.operator.access.list() });
    if ((m = /^GET \/v1\/access-requests\/(ar-[0-9a-f]{8})$/.exec(route))) {
      const found = deps.operator.access.get(m[1] as string);
      if (found === null) throw new ControlError(404, `no access request is pending under ${m[1] as string} (answered, lapsed, or keyswap restarted; see: keyswap approvals)`);
      return json(res, 200, { access_request: found });
    }
    if ((m = /^POST \/v1\/access-requests\/(ar-[0-9a-f]{8})\/(accepted|decline)$/.exec(route))) {
      await deps.operator.answerAccess(actor, m[1] as string, m[2] === 'accepted' ? 'accepted' : 'declined');
      return json(res, 200, { id: m[1], answer: m[2] === 'accepted' ? 'accepted' : 'declined' });
    }
    if (route === 'POST /v1/lockdown') {
      const body = parse(lockdownBody, await readJson(req));
      await deps.operator.setLockdown(actor, body.on, body.reason ?? null);
      return json(res, 200, { lockdown: deps.operator.record.lockdown });
    }
    if ((m = /^POST \/v1\/clients\/([^/]+)\/revoke$/.exec(route))) {
      const kind = await deps.operator.revoke(actor, decodeURIComponent(m[1] as string));
      return json(res, 200, { revoked: decodeURIComponent(m[1] as string), kind });
    }
    if (route === 'POST /v1/sessions') return await session(req, res, actor, deps, parse(sessionBody, await readJson(req)));
    if ((m = /^POST \/v1\/approvals\/([0-9a-f-]{8,36})\/(approve|deny)$/.exec(route))) {
      const body = parse(approveBody, await readJson(req));
      const id = m[1] as string;
      const answer = m[2] === 'approve' ? { kind: 'granted' as const, by: actor, rememberMs: body.remember_seconds === undefined || body.remember_seconds === null ? null : body.remember_seconds * 1000 } : { kind: 'denied' as const, by: actor };
      if (answer.kind === 'granted' && deps.operator.lockdown !== null) throw new ControlError(409, 'lockdown is on: nothing is approved until it is lifted (keyswap lockdown --off)');
      const held = deps.operator.approvals.answer(id, answer);
      if (held === null) throw new ControlError(404, `no request waits for approval under ${id} (answered, expired, or the agent left; see: keyswap approvals)`);
      return json(res, 200, { id, answer: answer.kind });
    }
    if (route === 'POST /v1/explain') {
      const q = parse(explainBody, await readJson(req));
      return json(res, 200, { lines: deps.explain({ method: q.method, url: q.url, headers: q.headers ?? [], client: q.client ?? null, secret: q.secret ?? null }) });
    }
    if (route === 'POST /v1/audit/verify') return json(res, 200, { verification: await deps.audit.verify() });
    if (route === 'POST /v1/ui/login' && deps.loginUrl !== undefined) return json(res, 200, { url: deps.loginUrl() });
    throw new ControlError(404, `no such control endpoint: ${route}`);
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof ControlError) return json(res, err.status, { error: err.message });
    return json(res, 500, { error: `keyswap could not do that: ${(err as Error).message}` });
  }
}

async function status(deps: ControlDeps): Promise<unknown> {
  const snap = deps.snapshot();
  const config = snap.config;
  const lockdown = deps.operator.record.lockdown;
  const anchor = await deps.audit.anchor().catch(() => null);
  const head = deps.audit.head();
  return {
    version: deps.version,
    lockdown,
    clients: config.clients === null ? null : [...config.clients.values()].map((c) => ({
      name: c.name, kind: c.session !== undefined ? 'session' : c.spiffeId !== null ? 'spiffe' : 'token', secrets: [...c.secrets].sort(),
      expires: c.expiresAtMs === null ? null : new Date(c.expiresAtMs).toISOString(),
      ...(c.session === undefined ? {} : { parent: c.session.parent, command: c.session.command, started: new Date(c.session.startedAtMs).toISOString() }),
    })),
    revoked: deps.operator.record.revoked.map((r) => ({ client: r.client, at: r.at, by: r.by })),
    approvals: deps.operator.approvals.list(),
    access_requests: deps.operator.access.list(),
    usage: snap.usage.states().map((q) => ({ name: q.name, used: q.used, limit: q.limit, period: q.period, state: q.state, period_end: new Date(q.periodEndMs).toISOString() })),
    bindings: config.secrets.filter((s) => !s.honeytoken).flatMap((s) => s.bindings.map((b) => ({
      secret: s.name, host: b.host, port: b.port, methods: b.methods, paths: b.paths,
      rate: b.rate === null ? null : `${b.rate.count}/${b.rate.perMs === 1000 ? 'second' : b.rate.perMs === 60_000 ? 'minute' : 'hour'}`,
      approve: b.approve === null ? null : { timeout_seconds: b.approve.timeoutMs / 1000, remember_seconds: b.approve.rememberMs / 1000 },
    }))),
    audit: { path: deps.audit.path, healthy: deps.audit.healthy(), head: `${head.seq}:${head.hash}`, anchor: anchor === null ? null : `${anchor.seq}:${anchor.hash}` },
  };
}

/** A session lives as long as this request: the token is the first line, and the session ends when either side closes. */
async function session(req: IncomingMessage, res: ServerResponse, actor: Actor, deps: ControlDeps, body: z.infer<typeof sessionBody>): Promise<void> {
  const s = await deps.operator.startSession(actor, { parent: body.parent, secrets: body.secrets ?? null, ttlMs: body.ttl_seconds === undefined || body.ttl_seconds === null ? null : body.ttl_seconds * 1000, command: body.command });
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.write(`${JSON.stringify({ name: s.name, token: s.token, expires: s.expiresAtMs === null ? null : new Date(s.expiresAtMs).toISOString() })}\n`);
  const end = (): void => { void deps.operator.endSession(actor, s.name).catch(() => {}); };
  res.once('close', end);
  req.socket.setKeepAlive(true, 10_000);
}

function events(req: IncomingMessage, res: ServerResponse, feed: DecisionFeed): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  const send = (event: string, data: unknown): void => {
    if (res.writableLength > MAX_BACKLOG) {
      res.destroy();
      return;
    }
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  for (const row of feed.recent()) send('decision', row);
  const stop = feed.subscribe((m) => (m.kind === 'decision' ? send('decision', m.row) : send('changed', {})));
  const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  beat.unref();
  req.once('close', () => {
    stop();
    clearInterval(beat);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ControlError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new ControlError(400, 'the body is not JSON');
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ControlError(400, r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** A JSON answer, for the control API and the console alike. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store' });
  res.end(text);
}
