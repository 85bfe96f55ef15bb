import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type http2 from 'node:http2';
import type { Duplex, Readable, Transform } from 'node:stream';
import { EchoBlocked, scrubResponse, UnreadableResponse, type BodyScrub, type Scrubber, type ScrubbedResponse } from '../scrub/index.js';
import { endToEndPairs, flatten } from '../wire/index.js';
import { agentSink, breakResponse, isGone, isHttp2, type AgentResponse } from './agent-response.js';
import type { Exchange } from './exchange.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { relay } from './relay.js';
import type { Outbound } from './forward.js';

/*
 * The response side of forwarding: an upstream's answer, from either protocol, to the agent that asked — head
 * scrubbed, body decoded and scrubbed, trailers for HTTP/2 agents, a broken transfer never passed off as complete.
 */

/** An upstream's answer, whichever protocol carried it. */
export interface UpstreamAnswer {
  readonly status: number;
  /** Raw header list as received (name, value, …), hop-by-hop ones included. */
  readonly raw: readonly string[];
  readonly body: Readable;
  /** Resolves with the raw trailers once the body has ended (empty when none); asked for only when they are relayed. */
  trailers(): Promise<readonly string[]>;
  /** Abandons the exchange upstream (the request and its response). */
  abort(): void;
}

/** An HTTP/1.1 upstream response as an answer. */
export function answerOf(upReq: ClientRequest, upRes: IncomingMessage): UpstreamAnswer {
  return {
    status: upRes.statusCode ?? 502,
    raw: upRes.rawHeaders,
    body: upRes,
    trailers: () => new Promise((resolve) => {
      upRes.once('end', () => resolve(upRes.rawTrailers));
      upRes.once('close', () => resolve([]));
    }),
    abort: () => {
      upReq.destroy();
      upRes.destroy();
    },
  };
}

/** The response, to the agent that sent the request: head scrubbed, body decoded and scrubbed when secrets are bound. */
export function respond(ex: Exchange, req: IncomingMessage | http2.Http2ServerRequest, res: AgentResponse, answer: UpstreamAnswer, anyScrubber: Scrubber | null, gate: Transform | null, toolFilter: Outbound['toolFilter'] = null): void {
  const status = answer.status;
  let head: ScrubbedResponse | null = null;
  let filter: Transform | null = null;
  try {
    if (anyScrubber !== null) head = scrubResponse(anyScrubber, { method: ex.method, requestContentType: req.headers['content-type'], status, raw: answer.raw });
    filter = toolFilter === null ? null : toolsFilterFor(toolFilter, ex.method, status, answer.raw, head);
    const length = head !== null && gate === null && filter === null && !isHttp2(res) ? head.wholeLength : null;
    if (head !== null && length !== null) {
      respondWhole(ex, res, answer, head.scrubber, head.headers, length);
      return;
    }
    // A filtered body changes length: it goes without the upstream's (head.headers never carry it).
    const unscrubbed = endToEndPairs(answer.raw).filter(([n]) => filter === null || n !== 'content-length');
    // No reason phrase is passed: Node writes the standard one for the code, so the upstream's text (which may
    // echo a credential) never reaches the agent.
    res.writeHead(status, (head?.headers ?? flatten(unscrubbed)) as unknown as Record<string, string>); // a raw list: both servers take one
  } catch (err) {
    abandon(ex, answer, err);
    return;
  }
  const scrubber = head?.scrubber ?? null;
  // Trailers reach an HTTP/2 agent (gRPC's status is one), scrubbed like the head; HTTP/1.1 agents never asked for them.
  if (isHttp2(res)) {
    void answer.trailers().then((raw) => {
      if (raw.length === 0 || isGone(res)) return;
      try {
        res.addTrailers(head === null ? Object.fromEntries(endToEndPairs(raw)) : head.trailers(raw));
      } catch (err) {
        if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
        breakResponse(res);
      }
    });
  }
  let bytes = 0;
  answer.body.on('data', (chunk: Buffer) => { bytes += chunk.length; });
  const done = (err: Error | null): void => {
    // A reset mid-body must reach the agent as a broken transfer, never as a clean end (DESIGN.md §2).
    if (err) {
      breakResponse(res);
      answer.abort();
    }
    if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
    for (const [secretName, count] of scrubber?.counts ?? []) ex.note({ type: 'response_scrubbed', secret_name: secretName, count, action: 'redacted' });
    ex.note({ type: 'upstream_response', status, bytes, ms: Math.round(ex.now() - ex.startedMs), complete: !err }, true);
  };
  if (filter === null && (head === null || (head.decoder === null && gate === null && !head.isGrpc && !isHttp2(res)))) {
    relayInline(answer.body, res as ServerResponse, head === null || head.isBodiless ? null : head.scrubber.inline(), done);
    return;
  }
  const middle: (Transform | Duplex)[] = [];
  if (head?.decoder) middle.push(head.decoder);
  // The tools list is rewritten before the scrubber reads it: what is written anew is scrubbed like the rest.
  if (filter !== null) middle.push(filter);
  if (head !== null) middle.push(head.bodyTransform());
  if (gate !== null) middle.push(gate);
  relay([answer.body, ...middle, agentSink(res)], done, () => breakResponse(res));
}

/**
 * The common case, without a stream per response: the body scrubbed on the upstream's own 'data' events, and the
 * writes of one turn of the event loop (often the whole body and its chunked terminator) corked into one TLS
 * record for the agent. A Transform here ended the response a tick after the socket uncorked, so the terminator
 * went out as a record of its own. Backpressure: the upstream is paused while the agent's socket is full.
 */
function relayInline(body: Readable, res: ServerResponse, replacer: BodyScrub | null, done: (err: Error | null) => void): void {
  let settled = false;
  const settle = (err: Error | null): void => {
    if (settled) return;
    settled = true;
    body.off('data', onData);
    if (err) {
      breakResponse(res);
      body.destroy();
    }
    done(err);
  };
  let corked = false;
  const uncork = (): void => {
    corked = false;
    res.uncork();
  };
  const write = (text: Buffer): void => {
    if (!corked) {
      corked = true;
      res.cork();
      setImmediate(uncork);
    }
    if (!res.write(text)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  };
  const onData = (chunk: Buffer): void => {
    if (replacer === null) return write(chunk);
    let out: Buffer;
    try {
      out = replacer.push(chunk);
    } catch (err) {
      return settle(err as Error);
    }
    if (out.length > 0) write(out);
  };
  body.on('data', onData);
  body.once('end', () => {
    let last: Buffer | null = null;
    try {
      last = replacer?.end() ?? null;
    } catch (err) {
      return settle(err as Error);
    }
    if (last !== null && last.length > 0) write(last);
    res.end();
  });
  // Plain listeners, not stream.finished(): it allocates per call, and this runs for every response.
  body.once('error', settle);
  body.once('close', () => { if (!body.readableEnded) settle(new Error('upstream body ended early')); });
  res.once('finish', () => settle(null));
  res.once('close', () => { if (!res.writableFinished) settle(new Error('agent went away mid-response')); });
}

/**
 * The tools-list filter for this answer, or null: none for an answer without a body, and none for one still
 * compressed (keyswap asked for none; the scrubber's decoder, when there is one, undoes what came anyway).
 */
function toolsFilterFor(make: NonNullable<Outbound['toolFilter']>, method: string, status: number, raw: readonly string[], head: ScrubbedResponse | null): Transform | null {
  if (method === 'HEAD' || status === 204 || status === 304) return null;
  let contentType: string | undefined;
  let coded = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (name === 'content-type') contentType = raw[i + 1];
    if (name === 'content-encoding' && (raw[i + 1] ?? '').trim().toLowerCase() !== 'identity') coded = true;
  }
  if (coded && head?.decoder == null) return null;
  return make(contentType);
}

/** The exchange is abandoned both ways before any of the response left: an upload still streaming must not keep the upstream waiting. */
function abandon(ex: Exchange, answer: UpstreamAnswer, err: unknown): void {
  answer.abort();
  if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
  ex.refuse(err instanceof Refusal ? err : new Refusal(err instanceof EchoBlocked ? 'upstream_echoed_secret' : err instanceof UnreadableResponse ? 'upstream_encoding_unsupported' : upstreamRefusal(err as Error).code, { cause: err }));
}

/**
 * A small response with a length (most API answers) is read whole, scrubbed once, and sent with its new length in
 * one write: one TLS record to the agent instead of a chunk and then its terminator, no stream per response, and
 * an echo under `response_scrub: block` becomes a clean 502 since nothing has been sent yet.
 */
function respondWhole(ex: Exchange, res: AgentResponse, answer: UpstreamAnswer, scrubber: Scrubber, headers: readonly string[], length: number): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let settled = false;
  const note = (complete: boolean): void => {
    for (const [secretName, count] of scrubber.counts) ex.note({ type: 'response_scrubbed', secret_name: secretName, count, action: 'redacted' });
    ex.note({ type: 'upstream_response', status: answer.status, bytes, ms: Math.round(ex.now() - ex.startedMs), complete }, true);
  };
  const fail = (err: Error): void => {
    if (settled) return;
    settled = true;
    abandon(ex, answer, err);
    note(false);
  };
  // The agent leaving while the body is read takes the upstream request with it.
  const onGone = (): void => { if (!settled) { settled = true; answer.abort(); note(false); } };
  res.once('close', onGone);
  answer.body.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > length) fail(new Refusal('upstream_failed', { cause: new Error('upstream body longer than its content-length') }));
    else chunks.push(chunk);
  });
  answer.body.once('error', fail);
  answer.body.once('end', () => {
    if (settled) return;
    if (bytes !== length) return fail(new Refusal('upstream_failed', { cause: new Error('upstream body shorter than its content-length') }));
    let body: Buffer;
    try {
      body = scrubber.scrubBytes(Buffer.concat(chunks, bytes));
      res.writeHead(answer.status, [...headers, 'content-length', String(body.length)] as unknown as Record<string, string>);
    } catch (err) {
      return fail(err as Error);
    }
    settled = true;
    res.off('close', onGone);
    res.end(body);
    note(true);
  });
}
