import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AuditEvent, Destination } from '../audit/index.js';
import type { ClientSpec } from '../config/index.js';
import { InvalidRendering } from '../inject/index.js';
import type { Logger } from '../log.js';
import { destinationOf } from './audit-facts.js';
import { OUTCOMES, Refusal, rawRefusal, refusalHeaders, type RefusalCode } from './refusal.js';
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
export type Reply = { readonly kind: 'response'; readonly res: ServerResponse } | { readonly kind: 'socket'; readonly socket: Duplex };

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
  /** Per agent socket, its requests in wire order, and the first one answered with `connection: close`. */
  readonly pipelines: WeakMap<object, { count: number; closedAt: number }>;
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
  /** This request's place among its connection's requests, and that connection's record (response replies). */
  readonly #pipeline: { readonly at: number; readonly of: { count: number; closedAt: number } } | null;

  constructor(deps: ExchangeDeps, snap: Snapshot, readonly method: string, readonly target: Target | null, path: string, readonly reply: Reply) {
    this.snap = snap;
    this.log = deps.log;
    this.now = deps.now;
    this.#isSelf = deps.isSelf;
    this.#pipeline = reply.kind === 'response' ? placeInPipeline(deps.pipelines, reply.res.req.socket) : null;
    this.startedMs = deps.now();
    // The audit file never holds a query string (it may carry a credential).
    const pathOnly = path.split('?', 1)[0] ?? '/';
    this.destination = target === null ? destinationOf('-', 0, '/') : destinationOf(target.host, target.port, pathOnly);
  }

  get clientName(): string | null { return this.target?.client?.name ?? null; }

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
    return { request_id: this.id, method: this.method, destination: this.destination, client: this.clientName, ...e } as AuditEvent;
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
   * Whether an answer to an earlier request on this connection closed it: then this request must not go
   * upstream (RFC 9112 §9.6), whichever order the two pipelines finish in. A later request's refusal does not count.
   */
  get isBehindClose(): boolean {
    return this.#pipeline !== null && this.#pipeline.of.closedAt < this.#pipeline.at;
  }

  /** Records an event nothing waits on; `lazy` lets it ride with the next durable batch. Failures are logged. */
  note(e: ExchangeEvent, lazy = false): void {
    const event = this.#scoped(e);
    (lazy ? this.snap.audit.appendLazy(event) : this.snap.audit.append(event)).catch((err: unknown) =>
      this.log.error({ err: errorSummary(err), request_id: this.id }, 'audit append failed'),
    );
  }

  /** Records a connection-level event (a tunnel) with this exchange's id and destination. */
  notePassthrough(): void {
    this.snap.audit.appendLazy({ type: 'tls_passthrough', request_id: this.id, destination: this.destination, client: this.clientName })
      .catch((err: unknown) => this.log.error({ err: errorSummary(err), request_id: this.id }, 'audit append failed'));
  }

  /**
   * The one place a request is refused: audit it, log the cause (never a value), answer from the one table.
   * Once a response head is out, the connection is cut instead: a broken transfer, never a clean end.
   */
  refuse(err: unknown): void {
    const code: RefusalCode = err instanceof Refusal ? err.code : err instanceof InvalidRendering ? 'secret_unavailable' : 'internal';
    const [status, body] = OUTCOMES[code];
    const cause = err instanceof Refusal ? err.cause : err;
    this.log.warn({ request_id: this.id, code, cause: errorSummary(cause) }, 'request refused');
    this.note({ type: 'deny', decision: 'denied', reason: code, status });
    const extra: Record<string, string> = err instanceof Refusal && err.retryAfterSeconds !== null ? { 'retry-after': String(err.retryAfterSeconds) } : {};
    if (this.reply.kind === 'socket') {
      if (this.reply.socket.writable) this.reply.socket.end(rawRefusal(code, extra));
      else this.reply.socket.destroy();
      return;
    }
    const res = this.reply.res;
    if (res.headersSent) {
      res.socket?.destroy();
      return;
    }
    if (res.destroyed) return;
    if (this.#pipeline !== null) this.#pipeline.of.closedAt = Math.min(this.#pipeline.of.closedAt, this.#pipeline.at);
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close', ...refusalHeaders(code, extra) });
    res.end(body);
  }
}

/** Numbers a request on its agent connection; requests arrive ('request' events) in wire order. */
function placeInPipeline(pipelines: ExchangeDeps['pipelines'], socket: object): { at: number; of: { count: number; closedAt: number } } {
  let of = pipelines.get(socket);
  if (of === undefined) pipelines.set(socket, (of = { count: 0, closedAt: Number.POSITIVE_INFINITY }));
  return { at: of.count++, of };
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
