import type { Socket } from 'node:net';
import type { ClientRequest, IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import type { Readable, Transform } from 'node:stream';
import { flatten, formatAuthority, type Framing, type HeaderPair } from '../wire/index.js';
import { isGone, isHttp2, type AgentResponse } from './agent-response.js';
import type { Exchange, Target } from './exchange.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { endAfter, relay } from './relay.js';
import { answerOf, respond } from './respond.js';
import type { Scrubber } from '../scrub/index.js';

/** The upstream request as the pipeline built it: secrets placed, decisions durable. */
export interface Outbound {
  /** Path and query, as sent upstream. */
  readonly path: string;
  /** End-to-end headers, without framing headers (set here from `framing`). */
  readonly headers: readonly HeaderPair[];
  /** How the body goes out: the agent's own framing, or chunked when `body` rewrites it. */
  readonly framing: Exclude<Framing, { kind: 'ambiguous' }>;
  /** The body rewriter (placeholders, honeytokens), or null to stream the agent's bytes as they are. */
  readonly body: Transform | null;
  /** Where the body comes from: the agent's request (null), or the bytes already read from it (a signed body). */
  readonly source: Readable | null;
  /** Null when no secret is bound to this destination: nothing to scrub, the response passes as it came. */
  readonly scrubber: Scrubber | null;
  /** The agent asked for trailers (`te: trailers`, as gRPC does): an HTTP/2 upstream is told so. */
  readonly wantsTrailers: boolean;
  /** A `usage:` use: counted once the request is on a connection to the upstream, released if it never gets there. */
  readonly use: { commit(): void; release(): void } | null;
  /** An MCP server's tool policy: its answers' tools lists filtered (mcp-gate.ts); null elsewhere. */
  readonly toolFilter: ((contentType: string | undefined) => Transform | null) | null;
}


/**
 * Sends the request upstream over HTTP/1.1 and relays the one response to the agent that asked. Framing is
 * explicit for every method: Node's client writes a GET's body raw, with no length, which the upstream would read
 * as a further request on a pooled connection (a smuggled request, another agent's response).
 */
export function forward(ex: Exchange, target: Target, req: IncomingMessage | http2.Http2ServerRequest, res: AgentResponse, out: Outbound): void {
  const headers = flatten(out.headers);
  if (out.framing.kind === 'length') headers.push('content-length', String(out.framing.bytes));
  if (out.framing.kind === 'chunked') headers.push('transfer-encoding', 'chunked');
  const upReq: ClientRequest = ex.snap.upstream.request(
    { scheme: target.scheme, host: target.host, port: target.port, identity: ex.clientName ?? '' },
    { method: ex.method, path: out.path, headers },
  );
  const exchange = start(ex, req, res, out, () => upReq.destroy());
  if (out.use !== null) countOnConnect(upReq, out.use);
  const gate = exchange.upload(upReq);
  // An upstream failure can also come after the body was sent (a hang-up before any response).
  upReq.on('error', exchange.fail);
  upReq.once('response', (upRes: IncomingMessage) => respond(ex, req, res, answerOf(upReq, upRes), out.scrubber, gate(), out.toolFilter));
}

/**
 * The same over an HTTP/2 session the upstream offered (an HTTP/2 agent's request): one stream per request, its
 * trailers relayed (gRPC's status travels in them).
 */
export function forwardH2(ex: Exchange, target: Target, req: http2.Http2ServerRequest, res: AgentResponse, out: Outbound, session: http2.ClientHttp2Session): void {
  const headers: Record<string, string | string[]> = {
    ':method': ex.method,
    ':scheme': target.scheme,
    ':authority': formatAuthority(target.host, target.port, target.scheme),
    ':path': out.path,
  };
  for (const [name, value] of out.headers) {
    if (name === 'host') continue;
    const had = headers[name];
    headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  if (out.framing.kind === 'length') headers['content-length'] = String(out.framing.bytes);
  if (out.wantsTrailers) headers.te = 'trailers';
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(headers, { endStream: out.framing.kind === 'none' });
  } catch (err) {
    out.use?.release();
    ex.refuse(upstreamRefusal(err as Error));
    return;
  }
  // The session was open before the stream: the request is on its way now.
  out.use?.commit();
  const exchange = start(ex, req, res, out, () => stream.close(http2.constants.NGHTTP2_CANCEL));
  const gate = exchange.upload(stream);
  stream.on('error', exchange.fail);
  const trailers = new Promise<readonly string[]>((resolve) => {
    stream.once('trailers', (t: http2.IncomingHttpHeaders) => resolve(rawOf(t)));
    stream.once('close', () => resolve([]));
  });
  stream.once('response', (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => {
    respond(ex, req, res, { status: h[':status'] ?? 502, raw: rawOf(h), body: stream, trailers: () => trailers, abort: () => stream.close(http2.constants.NGHTTP2_CANCEL) }, out.scrubber, gate(), out.toolFilter);
  });
}


/**
 * Counts a use when its request has a connection to the upstream (TCP, and TLS when it is https: its handshake
 * done), never for one that could not connect; a request that closes before that releases it.
 */
function countOnConnect(upReq: ClientRequest, use: { commit(): void; release(): void }): void {
  upReq.once('close', () => use.release());
  upReq.once('socket', (socket: Socket & { encrypted?: boolean; _secureEstablished?: boolean }) => {
    if (socket.encrypted === true) {
      if (socket._secureEstablished === true) use.commit();
      else socket.once('secureConnect', () => use.commit());
    } else if (socket.connecting) socket.once('connect', () => use.commit());
    else use.commit();
  });
}

/** An HTTP/2 header object as a raw list, pseudo-headers left out. */
function rawOf(headers: http2.IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, String(v));
  }
  return out;
}

/**
 * What both protocols share once the upstream request exists: the agent leaving cancels it, a failure before the
 * response refuses (or, after the head, breaks the transfer), and the body is streamed up.
 */
function start(ex: Exchange, req: IncomingMessage | http2.Http2ServerRequest, res: AgentResponse, out: Outbound, cancel: () => void): { fail: (err: Error) => void; upload: (sink: NodeJS.WritableStream) => () => Transform | null } {
  // The agent leaving at any point cancels the upstream request: nothing keeps running on its behalf. An
  // HTTP/1.1 agent's socket is watched, not only its response: a pipelined response still queued behind another
  // never emits 'close'. An HTTP/2 stream closed with any code but NO_ERROR was reset (by the agent, or by its
  // session ending): its writable side reads as finished even then, so the code is what tells.
  const onGone = (): void => {
    if (!res.writableFinished) cancel();
  };
  if (isHttp2(res)) {
    const stream = res.stream;
    stream.once('close', () => { if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) cancel(); });
  }
  else {
    const socket = res.req.socket;
    socket.once('close', onGone);
    res.once('close', () => {
      socket.off('close', onGone);
      onGone();
    });
  }
  let failed = false;
  const fail = (err: Error): void => {
    if (failed) return;
    failed = true;
    cancel();
    if (!(err instanceof Refusal) && (!req.complete || isGone(res))) {
      ex.log.info({ request_id: ex.id }, 'agent went away before the response');
      return;
    }
    ex.refuse(err instanceof Refusal ? err : upstreamRefusal(err));
  };
  // Returns the gate a response must pass: an early answer waits for the upload to finish before it ends (relay.ts, endAfter).
  const upload = (sink: NodeJS.WritableStream): (() => Transform | null) => {
    if (out.framing.kind === 'none') {
      req.resume();
      sink.end();
      return () => null;
    }
    let settled = false;
    const done = new Promise<void>((resolve) => {
      const from = (out.source ?? req) as NodeJS.ReadableStream;
      relay(out.body === null ? [from, sink] : [from, out.body, sink], (err) => {
        settled = true;
        resolve();
        if (err) fail(err);
      });
    });
    return () => (settled ? null : endAfter(done));
  };
  return { fail, upload };
}
