import type { Duplex, Transform } from 'node:stream';
import { endToEndPairs, flatten, type HeaderPair } from '../wire/index.js';
import { decoderFor, UnreadableResponse } from './decoders.js';
import { EchoBlocked, type GrpcGuard, type Scrubber } from './scrubber.js';

/*
 * The one entry proxy/ calls per response to a destination with secrets bound: the head scrubbed, and what the
 * body needs — its decoder, its scrubber (blocking where bytes cannot be rewritten), and whether it is small
 * enough to scrub whole.
 */

export interface ResponseFacts {
  /** The request's method and content-type: gRPC is known from the request as well as the response. */
  readonly method: string;
  readonly requestContentType: string | undefined;
  readonly status: number;
  /** Raw header list as received (name, value, …), hop-by-hop ones included. */
  readonly raw: readonly string[];
}

export interface ScrubbedResponse {
  /** The head for the agent, as a flat raw list: names and values scrubbed, framing left to the server. */
  readonly headers: string[];
  /** Decompresses the body so it can be read; its coding is dropped from the head. */
  readonly decoder: Transform | Duplex | null;
  readonly isGrpc: boolean;
  readonly isBodiless: boolean;
  /** The body's scrubber: for gRPC, every echo blocks (a placeholder of another length would break the framing). */
  readonly scrubber: Scrubber;
  /** A body this small, with a length and no coding, may be read whole and scrubbed once. */
  readonly wholeLength: number | null;
  /** The body transform when it streams: gRPC message payloads guarded, anything else scrubbed. */
  bodyTransform(): Transform;
  /**
   * The trailers for the agent, scrubbed; for gRPC read after the last message's payload, so an echo cut between
   * the body and grpc-message is found. Throws EchoBlocked.
   */
  trailers(raw: readonly string[]): Record<string, string>;
}

/** Bodies up to this size, with a length, are scrubbed whole and sent with their new length. */
const WHOLE_MAX = 64 * 1024;

/**
 * Reads a response's head for the agent. Throws EchoBlocked (an echo under `block`, or any echo in a gRPC head)
 * and UnreadableResponse (a coding keyswap cannot undo, or a compressed gRPC message).
 */
export function scrubResponse(anyScrubber: Scrubber, r: ResponseFacts): ScrubbedResponse {
  const facts = headFacts(r.raw);
  const isGrpc = isGrpcContentType(facts['content-type']) || isGrpcContentType(r.requestContentType);
  const scrubber = isGrpc ? anyScrubber.blocking() : anyScrubber;
  // A compressed gRPC message is out of the scrubber's sight; keyswap asked for none, so one is refused, whatever
  // the content-type says: a gRPC client decompresses what grpc-encoding names.
  if (!['identity', undefined].includes(facts['grpc-encoding']?.trim().toLowerCase())) throw new UnreadableResponse(`grpc-encoding ${facts['grpc-encoding']}`);
  const isBodiless = r.method === 'HEAD' || r.status === 204 || r.status === 304;
  const decoder = isBodiless ? null : decoderFor(facts['content-encoding'], facts['transfer-encoding']);
  const out: HeaderPair[] = [];
  for (const [name, value] of endToEndPairs(r.raw)) {
    // Scrubbing may change the body's length, and a decoded body is re-sent as it was read.
    if (name === 'content-length' && !isBodiless) continue;
    if (name === 'content-encoding' && decoder !== null) continue;
    out.push([scrubber.scrubText(name), scrubber.scrubText(value)]);
  }
  const isGrpcText = /grpc-web-text/i.test(facts['content-type'] ?? '');
  let guard: GrpcGuard | null = null;
  return {
    headers: flatten(out),
    decoder,
    isGrpc,
    isBodiless,
    scrubber,
    wholeLength: isGrpc || decoder !== null || isBodiless ? null : smallLength(facts['content-length']),
    bodyTransform: () => (isGrpc ? (guard = scrubber.grpcGuard(isGrpcText ? 'base64' : 'binary')) : scrubber.stream()),
    trailers: (raw) => {
      const pairs = endToEndPairs(raw);
      const found = guard === null ? null : scrubber.echoAfter(guard.tail, pairs.map(([n, v]) => `${n}: ${v}\n`).join(''));
      if (found !== null) throw new EchoBlocked(found);
      return scrubTrailers(scrubber, pairs);
    },
  };
}

/** Trailers scrubbed like the head, each name and value on its own. Throws EchoBlocked. */
function scrubTrailers(scrubber: Scrubber, pairs: readonly (readonly [string, string])[]): Record<string, string> {
  return Object.fromEntries(pairs.map(([n, v]) => [scrubber.scrubText(n), scrubber.scrubText(v)]));
}

/** A gRPC or gRPC-Web body (+proto, +json, -text…): length-prefixed messages, so echoes are blocked, never redacted. */
function isGrpcContentType(value: string | undefined): boolean {
  return /^application\/grpc(?:-web(?:-text)?)?(?:[+;]|$)/i.test((value ?? '').trim());
}

function smallLength(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return null;
  const n = Number(text);
  return n <= WHOLE_MAX ? n : null;
}

const FACT_NAMES = ['content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'grpc-encoding'] as const;
type HeadFacts = Partial<Record<(typeof FACT_NAMES)[number], string>>;

/** The headers scrubbing depends on, in one pass, each with every value joined as Node joins repeated ones. */
function headFacts(raw: readonly string[]): HeadFacts {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (!(FACT_NAMES as readonly string[]).includes(name)) continue;
    out[name] = out[name] === undefined ? (raw[i + 1] ?? '') : `${out[name]}, ${raw[i + 1] ?? ''}`;
  }
  return out;
}
