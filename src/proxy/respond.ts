import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type http2 from 'node:http2';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { endToEndPairs, flatten, type HeaderPair, type Replacer } from '../wire/index.js';
import { agentSink, breakResponse, isGone, isHttp2, type AgentResponse } from './agent-response.js';
import type { Exchange } from './exchange.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { relay } from './relay.js';
import { EchoBlocked, type Scrubber } from './scrubber.js';

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
export function respond(ex: Exchange, req: IncomingMessage | http2.Http2ServerRequest, res: AgentResponse, answer: UpstreamAnswer, anyScrubber: Scrubber | null, gate: Transform | null): void {
  const status = answer.status;
  // gRPC is known from the request as well as the response: an upstream that relabels its answer is still read as one.
  // The headers the scrubbing path reads, in one pass over the answer's raw list (none when nothing is scrubbed).
  const facts = anyScrubber === null ? null : headFacts(answer.raw);
  const grpc = facts !== null && (isGrpcContentType(facts['content-type']) || isGrpcContentType(req.headers['content-type']));
  const scrubber = grpc ? (anyScrubber as Scrubber).blocking() : anyScrubber;
  const isBodiless = req.method === 'HEAD' || status === 204 || status === 304;
  let head: ResponseHead;
  try {
    head = responseHead(answer.raw, scrubber, isBodiless, facts);
    // A compressed gRPC message is out of the scrubber's sight; keyswap asked for none, so one is refused.
    // Refused whatever the content-type says: a gRPC client decompresses what grpc-encoding names.
    if (facts !== null && !['identity', undefined].includes(facts['grpc-encoding']?.trim().toLowerCase())) throw new Refusal('upstream_encoding_unsupported');
    const length = facts !== null && !grpc && head.decoder === null && gate === null && !isBodiless && !isHttp2(res) ? smallLength(facts['content-length']) : null;
    if (length !== null) {
      respondWhole(ex, res, answer, scrubber as Scrubber, head.headers, length);
      return;
    }
    // No reason phrase is passed: Node writes the standard one for the code, so the upstream's text (which may
    // echo a credential) never reaches the agent.
    res.writeHead(status, head.headers as unknown as Record<string, string>); // a raw list: both servers take one
  } catch (err) {
    abandon(ex, answer, err);
    return;
  }
  // Trailers reach an HTTP/2 agent (gRPC's status is one), scrubbed like the head; HTTP/1.1 agents never asked for them.
  if (isHttp2(res)) {
    void answer.trailers().then((raw) => {
      if (raw.length === 0 || isGone(res)) return;
      try {
        res.addTrailers(Object.fromEntries(endToEndPairs(raw).map(([n, v]) => [scrub(scrubber, n), scrub(scrubber, v)])));
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
  if (head.decoder === null && gate === null && !grpc && !isHttp2(res)) {
    relayInline(answer.body, res as ServerResponse, scrubber?.inline() ?? null, done);
    return;
  }
  const middle: Transform[] = [];
  if (head.decoder !== null) middle.push(head.decoder);
  // A gRPC body is guarded message by message (never rewritten: a length prefix would lie); gRPC-Web text is base64, read as any body.
  if (scrubber !== null) middle.push(grpc && !/grpc-web-text/i.test(facts?.['content-type'] ?? '') ? scrubber.grpcGuard() : scrubber.stream());
  if (gate !== null) middle.push(gate);
  relay([answer.body, ...middle, agentSink(res)], done, () => breakResponse(res));
}

/**
 * The common case, without a stream per response: the body scrubbed on the upstream's own 'data' events, and the
 * writes of one turn of the event loop (often the whole body and its chunked terminator) corked into one TLS
 * record for the agent. A Transform here ended the response a tick after the socket uncorked, so the terminator
 * went out as a record of its own. Backpressure: the upstream is paused while the agent's socket is full.
 */
function relayInline<T>(body: Readable, res: ServerResponse, replacer: Replacer<T> | null, done: (err: Error | null) => void): void {
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
  const write = (text: string | Buffer): void => {
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
    let text: string;
    try {
      text = replacer.push(chunk);
    } catch (err) {
      return settle(err as Error);
    }
    if (text.length > 0) write(Buffer.from(text, 'latin1'));
  };
  body.on('data', onData);
  body.once('end', () => {
    let last = '';
    try {
      last = replacer?.end() ?? '';
    } catch (err) {
      return settle(err as Error);
    }
    if (last.length > 0) write(Buffer.from(last, 'latin1'));
    res.end();
  });
  // Plain listeners, not stream.finished(): it allocates per call, and this runs for every response.
  body.once('error', settle);
  body.once('close', () => { if (!body.readableEnded) settle(new Error('upstream body ended early')); });
  res.once('finish', () => settle(null));
  res.once('close', () => { if (!res.writableFinished) settle(new Error('agent went away mid-response')); });
}

/** The exchange is abandoned both ways before any of the response left: an upload still streaming must not keep the upstream waiting. */
function abandon(ex: Exchange, answer: UpstreamAnswer, err: unknown): void {
  answer.abort();
  if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
  ex.refuse(err instanceof Refusal ? err : new Refusal(err instanceof EchoBlocked ? 'upstream_echoed_secret' : upstreamRefusal(err as Error).code, { cause: err }));
}

/** Bodies up to this size, with a length, are scrubbed whole and sent with their new length. */
const WHOLE_MAX = 64 * 1024;

function smallLength(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return null;
  const n = Number(text);
  return n <= WHOLE_MAX ? n : null;
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
      body = Buffer.from(scrubber.scrubText(Buffer.concat(chunks, bytes).toString('latin1')), 'latin1');
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

/** A gRPC or gRPC-Web body (+proto, +json, -text…): length-prefixed messages, so echoes are blocked, never redacted. */
function isGrpcContentType(value: string | undefined): boolean {
  return /^application\/grpc(?:-web(?:-text)?)?(?:[+;]|$)/i.test((value ?? '').trim());
}

const scrub = (scrubber: Scrubber | null, text: string): string => (scrubber === null ? text : scrubber.scrubText(text));

interface ResponseHead { readonly headers: string[]; readonly decoder: Transform | null }

/**
 * The response head the agent sees. With secrets bound to the destination, header names and values are
 * scrubbed, and a compressed body is decoded so the scrubber can read it: it is re-sent uncompressed and
 * without a length, since scrubbing may change it. keyswap asked for the codings it can undo; a response in any
 * other (zstd, stacked `gzip, gzip`, a transfer coding) could carry an echo the scrubber cannot see, so it is
 * refused rather than passed on.
 */
function responseHead(raw: readonly string[], scrubber: Scrubber | null, isBodiless: boolean, facts: HeadFacts | null): ResponseHead {
  const pairs = endToEndPairs(raw);
  if (scrubber === null) return { headers: flatten(pairs), decoder: null };
  const decoder = isBodiless || facts === null ? null : decoderFor(facts);
  const out: HeaderPair[] = [];
  for (const [name, value] of pairs) {
    if (name === 'content-length' && !isBodiless) continue;
    if (name === 'content-encoding' && decoder !== null) continue;
    out.push([scrubber.scrubText(name), scrubber.scrubText(value)]);
  }
  return { headers: flatten(out), decoder };
}

const FACT_NAMES = ['content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'grpc-encoding'] as const;
type HeadFacts = Partial<Record<(typeof FACT_NAMES)[number], string>>;

/** The headers scrubbing depends on, each with every value joined as Node joins repeated ones. */
function headFacts(raw: readonly string[]): HeadFacts {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (!(FACT_NAMES as readonly string[]).includes(name)) continue;
    out[name] = out[name] === undefined ? (raw[i + 1] ?? '') : `${out[name]}, ${raw[i + 1] ?? ''}`;
  }
  return out;
}


function decoderFor(facts: HeadFacts): Transform | null {
  const te = facts['transfer-encoding'];
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') throw new Refusal('upstream_encoding_unsupported');
  // Repeated Content-Encoding headers are read joined, so a stacked coding is seen whole here.
  const codings = (facts['content-encoding'] ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return null;
  const only = codings.length === 1 ? codings[0] : undefined;
  if (only === 'gzip' || only === 'x-gzip') return createGunzip();
  if (only === 'deflate') return createInflate();
  if (only === 'br') return createBrotliDecompress();
  throw new Refusal('upstream_encoding_unsupported');
}
