import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { endToEndPairs, flatten, type Framing, type HeaderPair } from '../wire/index.js';
import type { Exchange, Target } from './exchange.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { endAfter, relay } from './relay.js';
import { EchoBlocked, type Scrubber } from './scrubber.js';

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
}

/**
 * Sends the request upstream and relays the one response to the agent that asked. Framing is explicit for every
 * method: Node's client writes a GET's body raw, with no length, which the upstream would read as a further
 * request on a pooled connection (a smuggled request, another agent's response).
 */
export function forward(ex: Exchange, target: Target, req: IncomingMessage, res: ServerResponse, out: Outbound): void {
  const headers = flatten(out.headers);
  if (out.framing.kind === 'length') headers.push('content-length', String(out.framing.bytes));
  if (out.framing.kind === 'chunked') headers.push('transfer-encoding', 'chunked');
  const upReq: ClientRequest = ex.snap.upstream.request(
    { scheme: target.scheme, host: target.host, port: target.port, identity: ex.clientName ?? '' },
    { method: ex.method, path: out.path, headers },
  );
  // The agent leaving at any point cancels the upstream request: nothing keeps running on its behalf. Its socket
  // is watched, not only its response: a pipelined response still queued behind another never emits 'close'.
  const onGone = (): void => {
    if (!res.writableFinished) upReq.destroy();
  };
  const socket = req.socket;
  socket.once('close', onGone);
  res.once('close', () => {
    socket.off('close', onGone);
    onGone();
  });
  let failed = false;
  const fail = (err: Error): void => {
    if (failed) return;
    failed = true;
    upReq.destroy();
    if (!(err instanceof Refusal) && (!req.complete || res.destroyed)) {
      ex.log.info({ request_id: ex.id }, 'agent went away before the response');
      return;
    }
    ex.refuse(err instanceof Refusal ? err : upstreamRefusal(err));
  };
  let uploading: Promise<void> | null = null;
  if (out.framing.kind === 'none') {
    req.resume();
    upReq.end();
  } else {
    uploading = new Promise<void>((resolve) => {
      const from = out.source ?? req;
      relay(out.body === null ? [from, upReq] : [from, out.body, upReq], (err) => {
        uploading = null;
        resolve();
        if (err) fail(err);
      });
    });
  }
  // An upstream failure can also come after the body was sent (a hang-up before any response).
  upReq.on('error', fail);
  // An early answer waits for the upload to finish before it ends (relay.ts, endAfter).
  upReq.once('response', (upRes) => respond(ex, req, res, upReq, upRes, out.scrubber, uploading === null ? null : endAfter(uploading)));
}

/** The response, to the agent that sent the request: head scrubbed, body decoded and scrubbed when secrets are bound. */
export function respond(ex: Exchange, req: IncomingMessage, res: ServerResponse, upReq: ClientRequest, upRes: IncomingMessage, scrubber: Scrubber | null, gate: Transform | null): void {
  const status = upRes.statusCode ?? 502;
  let head: ResponseHead;
  try {
    head = responseHead(upRes, scrubber, req.method === 'HEAD' || status === 204 || status === 304);
    // No reason phrase is passed: Node writes the standard one for the code, so the upstream's text (which may
    // echo a credential) never reaches the agent.
    res.writeHead(status, head.headers);
  } catch (err) {
    // The exchange is abandoned both ways: an upload still streaming must not keep the upstream waiting.
    upReq.destroy();
    upRes.destroy();
    if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
    ex.refuse(err instanceof Refusal ? err : new Refusal(err instanceof EchoBlocked ? 'upstream_echoed_secret' : 'upstream_failed', { cause: err }));
    return;
  }
  let bytes = 0;
  upRes.on('data', (chunk: Buffer) => { bytes += chunk.length; });
  const done = (err: Error | null): void => {
    // A reset mid-body must reach the agent as a broken transfer, never as a clean end (DESIGN.md §2).
    if (err) {
      res.socket?.destroy();
      upReq.destroy();
    }
    if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
    for (const [secretName, count] of scrubber?.counts ?? []) ex.note({ type: 'response_scrubbed', secret_name: secretName, count, action: 'redacted' });
    ex.note({ type: 'upstream_response', status, bytes, ms: Math.round(ex.now() - ex.startedMs), complete: !err }, true);
  };
  const middle: Transform[] = [];
  if (head.decoder !== null) middle.push(head.decoder);
  if (scrubber !== null) middle.push(scrubber.stream());
  if (gate !== null) middle.push(gate);
  relay([upRes, ...middle, res], done);
}

interface ResponseHead { readonly headers: string[]; readonly decoder: Transform | null }

/**
 * The response head the agent sees. With secrets bound to the destination, header names and values are
 * scrubbed, and a compressed body is decoded so the scrubber can read it: it is re-sent uncompressed and
 * without a length, since scrubbing may change it. keyswap asked for the codings it can undo; a response in any
 * other (zstd, stacked `gzip, gzip`, a transfer coding) could carry an echo the scrubber cannot see, so it is
 * refused rather than passed on.
 */
function responseHead(upRes: IncomingMessage, scrubber: Scrubber | null, isBodiless: boolean): ResponseHead {
  const pairs = endToEndPairs(upRes.rawHeaders);
  if (scrubber === null) return { headers: flatten(pairs), decoder: null };
  const decoder = isBodiless ? null : decoderFor(upRes);
  const out: HeaderPair[] = [];
  for (const [name, value] of pairs) {
    if (name === 'content-length' && !isBodiless) continue;
    if (name === 'content-encoding' && decoder !== null) continue;
    out.push([scrubber.scrubText(name), scrubber.scrubText(value)]);
  }
  return { headers: flatten(out), decoder };
}

function decoderFor(upRes: IncomingMessage): Transform | null {
  const te = upRes.headers['transfer-encoding'];
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') throw new Refusal('upstream_encoding_unsupported');
  // Node joins repeated Content-Encoding headers with ', ', so a stacked coding is seen whole here.
  const codings = (upRes.headers['content-encoding'] ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return null;
  const only = codings.length === 1 ? codings[0] : undefined;
  if (only === 'gzip' || only === 'x-gzip') return createGunzip();
  if (only === 'deflate') return createInflate();
  if (only === 'br') return createBrotliDecompress();
  throw new Refusal('upstream_encoding_unsupported');
}

