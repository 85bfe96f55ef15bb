import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuditEvent, Destination } from '../audit/index.js';
import type { ClientSpec } from '../config/index.js';
import { InvalidRendering } from '../inject/index.js';
import type { Logger } from '../log.js';
import { breakResponse, isGone, isHttp2, type AgentResponse } from './agent-response.js';
import { destinationOf, auditMethod } from './audit-facts.js';
import { OUTCOMES, Refusal, rawRefusal, refusalHeaders, type RefusalCode } from './refusal.js';
import type { LiveKind, LiveClients } from './live-clients.js';
import type { Snapshot } from './snapshot.js';

/**
 * Where a request goes, as the entry mode established it: the CONNECT target, the absolute URL's authority, or a
 * base-URL route's origin. Nothing the agent says later (Host, SNI, :authority) can change it (K3).
 */
export interface Target {
  readonly scheme: 'https' | 'http';
  readonly host: string;
  readonly port: number;
  /** The TLS SNI the agent sent on a decrypted connection; null for plain http. */
  readonly sni: string | null;
  /** The agent that authenticated (`clients:`); every request of a connection acts as it. */
  readonly client: ClientSpec | null;
  /** Base-URL mode: the agent's Host names keyswap, so the route's origin stands in for it. */
  readonly isRoute: boolean;
}

/** How a refusal reaches the agent: as an HTTP response, or as raw bytes on a socket that has none (CONNECT). */
export type Reply = { readonly kind: 'response'; readonly res: AgentResponse } | { readonly kind: 'socket'; readonly socket: Duplex };

type Scoped<E> = E extends { readonly request_id: string; readonly method: string } ? Omit<E, 'request_id' | 'method' | 'destination' | 'client'> : never;
/** A request-scoped audit event without the fields the exchange fills in. */
export type ExchangeEvent = Scoped<AuditEvent>;

/** What an exchange needs from the running proxy: the config in force, the logger and the clocks. */
export interface ExchangeDeps {
  readonly snapshot: () => Snapshot;
  readonly log: Logger;
  /** Monotonic milliseconds, for durations. */
  readonly now: () => number;
  /** Whether an address dialled would reach keyswap's own listener (a loop). */
  readonly isSelf: (host: string, port: number) => boolean;
  /** Per agent socket, its requests in wire order (see Pipeline). */
  readonly pipelines: WeakMap<object, Pipeline>;
  /** What authenticated clients hold open, closed when the configuration stops admitting them. */
  readonly live: LiveClients;
}

/**
 * One request (or one CONNECT) from the agent, from its entry to its last byte: its facts, the snapshot it read
 * once at entry, and the only ways to act on it — audit(), note() and refuse(). Every entry mode builds one.
 */
export class Exchange {
  readonly id = randomUUID();
  readonly snap: Snapshot;
  readonly log: Logger;
  readonly now: () => number;
  readonly startedMs: number;
  readonly destination: Destination;
  readonly #isSelf: ExchangeDeps['isSelf'];
  readonly #live: LiveClients;
  /** The configuration in force now, which a long-lived exchange (a WebSocket) re-reads; `snap` is the one at entry. */
  readonly current: () => Snapshot;
  /** This request's place among its connection's requests, and that connection's record (response replies). */
  readonly #pipeline: { readonly at: number; readonly of: Pipeline; readonly previousAnswered: Promise<void> } | null;

  constructor(deps: ExchangeDeps, snap: Snapshot, readonly method: string, readonly target: Target | null, path: string, readonly reply: Reply) {
    this.snap = snap;
    this.log = deps.log;
    this.now = deps.now;
    this.#isSelf = deps.isSelf;
    this.#live = deps.live;
    this.current = deps.snapshot;
    // HTTP/2 streams are independent: only an HTTP/1.1 connection's requests wait for each other.
    this.#pipeline = reply.kind === 'response' && !isHttp2(reply.res) ? placeInPipeline(deps.pipelines, reply.res) : null;
    this.startedMs = deps.now();
    // The audit file never holds a query string (it may carry a credential).
    const pathOnly = path.split('?', 1)[0] ?? '/';
    this.destination = target === null ? destinationOf('-', 0, '/') : destinationOf(target.host, target.port, pathOnly);
  }

  get clientName(): string | null { return this.target?.client?.name ?? null; }

  /** Holds `key` open under this exchange's client until let go: closed if the client stops being admitted. */
  holdOpen(key: object, kind: LiveKind, close: () => void): void {
    this.#live.hold(key, kind, this.target?.client ?? null, close);
  }

  letGo(key: object): void {
    this.#live.release(key);
  }

  /**
   * Whether this destination, once `upstream.resolve` has mapped it, is keyswap's own listener: a CONNECT to
   * itself nests without bound (two descriptors per level on keyswap, none on the agent).
   */
  get isLoop(): boolean {
    if (this.target === null) return false;
    const dial = this.snap.upstream.dialAddress(this.target.host, this.target.port);
    return this.#isSelf(dial.host, dial.port);
  }

  #scoped(e: ExchangeEvent): AuditEvent {
    return { request_id: this.id, method: auditMethod(this.method), destination: this.destination, client: this.clientName, ...e } as AuditEvent;
  }

  /** Makes these events durable before resolving (K5); a failure becomes `audit_unavailable` (K4). */
  async audit(events: readonly ExchangeEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await Promise.all(events.map((e) => this.snap.audit.append(this.#scoped(e))));
    } catch (err) {
      throw new Refusal('audit_unavailable', { cause: err });
    }
  }

  /**
   * Resolves once every request ahead of this one on its connection is answered (or the connection is gone), and
   * says whether this one may still go upstream: not when an answer ahead of it closed the connection (RFC 9112
   * §9.6). Pipelined requests are sent upstream one at a time, so an earlier request that fails late can never
   * have a later one's secret already sent behind it.
   */
  async mayForward(): Promise<boolean> {
    if (this.#pipeline === null || this.reply.kind !== 'response' || isHttp2(this.reply.res)) return true;
    await this.#pipeline.previousAnswered;
    if (this.#pipeline.of.closedAt <= this.#pipeline.at || this.#pipeline.of.isGone) return false;
    // Not every answer on the connection is an exchange's: the health endpoint answers, and Node's server writes
    // its own (a 400 for a missing Host, a 417 for an unknown Expect) without a request keyswap ever sees. Node's
    // queue of answers is the one record of them all: a response gets the connection only once every answer ahead
    // of it is out, and never behind one that closed it.
    return holdsConnection(this.reply.res);
  }

  /** Records an event nothing waits on; `lazy` lets it ride with the next durable batch. Failures are logged. */
  note(e: ExchangeEvent, lazy = false): Promise<void> {
    const event = this.#scoped(e);
    return (lazy ? this.snap.audit.appendLazy(event) : this.snap.audit.append(event)).catch(logFailedAppend(this.log, this.id));
  }

  /** Records a connection-level event (a tunnel) with this exchange's id and destination. */
  notePassthrough(): void {
    this.snap.audit.appendLazy({ type: 'tls_passthrough', request_id: this.id, destination: this.destination, client: this.clientName })
      .catch(logFailedAppend(this.log, this.id));
  }

  /**
   * The one place a request is refused: audit it (a `deny`, or `tunnel_failed` for a tunnel that could not
   * connect), log the cause (never a value), answer from the one table.
   * Once a response head is out, the connection is cut instead: a broken transfer, never a clean end.
   */
  refuse(err: unknown, record: 'deny' | 'tunnel_failed' = 'deny'): void {
    const code: RefusalCode = err instanceof Refusal ? err.code : err instanceof InvalidRendering ? 'secret_unavailable' : 'internal';
    const [tableStatus, body] = OUTCOMES[code];
    // A refusal in the agent's own protocol (an MCP client's JSON-RPC errors) is recorded with the status it gets.
    const answer = err instanceof Refusal && err.answer !== null && this.reply.kind === 'response' ? err.answer : { status: tableStatus, contentType: 'text/plain', body };
    const status = answer.status;
    const cause = err instanceof Refusal ? err.cause : err;
    this.log.warn({ request_id: this.id, code, cause: errorSummary(cause) }, record === 'deny' ? 'request refused' : 'tunnel failed');
    const recorded = this.note(record === 'deny' ? { type: 'deny', decision: 'denied', reason: code, status } : { type: 'tunnel_failed', cause: code, status });
    const extra: Record<string, string> = err instanceof Refusal && err.retryAfterSeconds !== null ? { 'retry-after': String(err.retryAfterSeconds) } : {};
    // The answer waits for its record (and every record noted before it), written or failed: an agent that has
    // its refusal can find it in the audit log. A transfer already under way is cut at once, never later.
    if (this.reply.kind === 'socket') {
      const socket = this.reply.socket;
      if (!socket.writable) socket.destroy();
      else void recorded.then(() => { if (socket.writable) socket.end(rawRefusal(code, extra)); else socket.destroy(); });
      return;
    }
    const res = this.reply.res;
    if (res.headersSent) {
      breakResponse(res);
      return;
    }
    if (isGone(res)) return;
    if (this.#pipeline !== null) this.#pipeline.of.closedAt = Math.min(this.#pipeline.of.closedAt, this.#pipeline.at);
    // An HTTP/1.1 refusal closes its connection; an HTTP/2 one ends its stream only (h2 has no Connection header).
    const close: Record<string, string> = isHttp2(res) ? {} : { connection: 'close' };
    const headers = { 'content-type': answer.contentType, 'content-length': String(Buffer.byteLength(answer.body)), ...close, ...refusalHeaders(code, extra) };
    // Owed from here: the listener must not answer this request itself meanwhile (a broken body's 400).
    refusalsOwed.add(res);
    void recorded.then(() => {
      refusalsOwed.delete(res);
      if (res.headersSent || isGone(res)) return;
      res.writeHead(answer.status, headers);
      res.end(answer.body);
    });
  }
}

/** Responses whose refusal is decided and waits only for its record: their answer is owed, though not begun. */
const refusalsOwed = new WeakSet<AgentResponse>();

/** Whether this response's refusal is decided and will be written once its record settles. */
export function isRefusalOwed(res: AgentResponse): boolean {
  return refusalsOwed.has(res);
}

/**
 * What a failed append that nothing waits on does. Made outside the exchange: a lazy event waits in the writer's
 * queue (up to 100 ms), and a handler that closed over the exchange would keep its whole request reachable so long.
 */
function logFailedAppend(log: Logger, requestId: string): (err: unknown) => void {
  return (err) => log.error({ err: errorSummary(err), request_id: requestId }, 'audit append failed');
}

/** One agent connection's requests, in wire order ('request' events arrive in that order). */
interface Pipeline {
  count: number;
  /** The position of the first request answered with `connection: close`. */
  closedAt: number;
  isGone: boolean;
  /** Resolves when the last request placed so far has been answered, or the connection is gone. */
  lastAnswered: Promise<void>;
  /** The answers still owed: the connection's close settles them all (a queued response never sees its own). */
  readonly owed: Set<() => void>;
}

function placeInPipeline(pipelines: ExchangeDeps['pipelines'], res: ServerResponse): { at: number; of: Pipeline; previousAnswered: Promise<void> } {
  const socket = res.req.socket;
  let of = pipelines.get(socket);
  if (of === undefined) {
    of = openPipeline(socket);
    pipelines.set(socket, of);
  }
  const previousAnswered = of.lastAnswered;
  // Not a race against a promise of the connection's close: each race would leave a reaction on that pending
  // promise, so a keep-alive connection held memory for every request it ever carried (measured: 40,000 promises
  // after 20,000 requests). A settled answer leaves nothing behind.
  const owed = of.owed;
  of.lastAnswered = new Promise<void>((resolve) => {
    const settle = (): void => {
      owed.delete(settle);
      resolve();
    };
    owed.add(settle);
    res.once('close', settle);
    if (socket.destroyed) settle();
  });
  return { at: of.count++, of, previousAnswered };
}

/** Resolves true once `res` is the connection's current answer; false if the connection or the response ends first. */
function holdsConnection(res: ServerResponse): boolean | Promise<boolean> {
  if (res.socket !== null) return true;
  const socket = res.req.socket;
  if (socket.destroyed) return false;
  return new Promise<boolean>((resolve) => {
    const settle = (held: boolean) => (): void => {
      res.off('socket', onSocket);
      res.off('close', onEnd);
      socket.off('close', onEnd);
      resolve(held);
    };
    const onSocket = settle(true);
    const onEnd = settle(false);
    res.once('socket', onSocket);
    res.once('close', onEnd);
    socket.once('close', onEnd);
  });
}

/**
 * A connection's record, its close listener made here: a closure made in placeInPipeline would share that call's
 * scope and keep its request and response reachable for as long as the connection stays open.
 */
function openPipeline(socket: Duplex): Pipeline {
  const record: Pipeline = { count: 0, closedAt: Number.POSITIVE_INFINITY, isGone: false, lastAnswered: Promise.resolve(), owed: new Set() };
  socket.once('close', () => {
    record.isGone = true;
    for (const settle of record.owed) settle();
  });
  return record;
}

/**
 * What a log line may say about an error: its class, code and message. Messages of keyswap's own errors carry
 * names, never values; InvalidRendering names only the secret.
 */
export function errorSummary(err: unknown): { type: string; code?: string; message: string } | undefined {
  if (err === undefined) return undefined;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { type: err.name, ...(typeof code === 'string' ? { code } : {}), message: err.message };
  }
  return { type: typeof err, message: 'non-error thrown' };
}
