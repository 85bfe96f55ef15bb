import { Transform, type TransformCallback } from 'node:stream';
import { EchoMatcher, ScanOverload, type EchoForm, type EchoScan } from './echo-matcher.js';
import { MIN_FORM_BYTES, valueForms, type ValueForm } from './echo-forms.js';

/** One secret whose echoes a response must not carry, with every value it went out as (composed secrets: several). */
export interface ScrubTarget {
  readonly secretName: string;
  readonly placeholder: string;
  /** The values: backend values, template renderings, minted credentials, what a token request carried. */
  readonly values: readonly string[];
  /** redact: replace the echo with the placeholder; block: fail the response instead (`response_scrub`). */
  readonly mode: 'redact' | 'block';
}

export interface EchoTag { readonly secretName: string; readonly block: boolean }

/** An echo of a secret whose `response_scrub` is `block` (or in a body that cannot be rewritten): the response must not reach the agent. */
export class EchoBlocked extends Error {
  override readonly name = 'EchoBlocked';
  constructor(readonly secretName: string) {
    super(`upstream echoed secret ${secretName}; response blocked`);
  }
}

/** The compiled matcher for a set of scrub targets: every form of every value, replaced by its secret's placeholder. */
export function compileTargets(targets: readonly ScrubTarget[], formsOf: (value: string) => readonly ValueForm[] = valueForms): EchoMatcher<EchoTag> {
  const forms: EchoForm<EchoTag>[] = [];
  for (const t of targets) {
    const tag = { secretName: t.secretName, block: t.mode === 'block' };
    for (const v of t.values) for (const f of formsOf(v)) forms.push({ ...f, replace: t.placeholder, tag });
  }
  return new EchoMatcher(forms);
}

/** A body scrubber without a stream of its own: push() and end() return what may be released; they throw EchoBlocked. */
export interface BodyScrub {
  push(chunk: Buffer): Buffer;
  end(): Buffer;
}

/**
 * Replaces every echo of a secret in one response (or WebSocket) with its placeholder (K1), counting what it
 * replaced. The matcher is shared (built once per set of values); the counts are this response's.
 */
export class Scrubber {
  readonly counts = new Map<string, number>();
  readonly #matcher: EchoMatcher<EchoTag>;
  readonly #blockAll: boolean;

  /** `blockAll`: every echo fails the response, whatever the secret's `response_scrub` says (see blocking()). */
  constructor(matcher: EchoMatcher<EchoTag>, blockAll = false) {
    this.#matcher = matcher;
    this.#blockAll = blockAll;
  }

  /**
   * The same forms, each echo failing the response: for bodies whose framing counts bytes (gRPC's length-prefixed
   * messages, protobuf inside them), where a placeholder of another length would corrupt every message after it,
   * so an echo cannot be redacted and the stream is reset instead.
   */
  blocking(): Scrubber {
    return new Scrubber(this.#matcher, true);
  }

  get isEmpty(): boolean { return this.#matcher.isEmpty; }

  /** How many bytes of what came before a text an echo can reach back into. */
  get reach(): number { return Math.max(0, this.#matcher.longestSpan - 1); }

  /** The secret the first echo in a whole text (latin1) belongs to, or null. */
  secretIn(text: string): string | null {
    return this.#matcher.firstIn(Buffer.from(text, 'latin1'))?.secretName ?? null;
  }

  readonly #onEcho = (tag: EchoTag): void => {
    if (tag.block || this.#blockAll) throw new EchoBlocked(tag.secretName);
    this.counts.set(tag.secretName, (this.counts.get(tag.secretName) ?? 0) + 1);
  };

  #scan(): EchoScan<EchoTag> {
    return this.#matcher.scan(this.#onEcho);
  }

  /** Scrubs a complete text: a header name or value as Node hands it over (latin1). Throws EchoBlocked. */
  scrubText(text: string): string {
    return this.scrubBytes(Buffer.from(text, 'latin1')).toString('latin1');
  }

  /** Scrubs complete bytes (a whole body, a message). Throws EchoBlocked. */
  scrubBytes(bytes: Buffer): Buffer {
    return guarded(() => this.#matcher.replaceAll(bytes, this.#onEcho));
  }

  /** The body scrubber for forward's inline relay. */
  inline(): BodyScrub {
    const scan = this.#scan();
    return {
      push: (chunk) => guarded(() => scan.push(chunk)),
      end: () => guarded(() => scan.end()),
    };
  }

  /** A body transform: scrubbed bytes out, holding back only a possible partial echo. Fails with EchoBlocked. */
  stream(): Transform {
    const body = this.inline();
    return new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        let out: Buffer;
        try {
          out = body.push(chunk);
        } catch (err) {
          done(err as Error);
          return;
        }
        done(null, out.length > 0 ? out : undefined);
      },
      flush(done: TransformCallback) {
        let out: Buffer;
        try {
          out = body.end();
        } catch (err) {
          done(err as Error);
          return;
        }
        done(null, out.length > 0 ? out : undefined);
      },
    });
  }

  /**
   * For gRPC and gRPC-Web bodies (this scrubber blocking): the bytes pass unchanged, while the messages' payloads,
   * their 5-byte length prefixes taken out, are read as one text: an echo cut across two messages of a stream, or
   * across chunks, is found there, and fails the body with EchoBlocked. gRPC-Web text is base64 first, each message
   * (or each flush) padded on its own: it is decoded group by group before the payloads are read.
   */
  grpcGuard(encoding: 'binary' | 'base64' = 'binary'): GrpcGuard {
    return new GrpcGuard(this.#scan(), this.reach, encoding);
  }

  /** Whether `text` (trailers, a close reason) read after `tail` completes an echo; the secret it belongs to, or null. */
  echoAfter(tail: Buffer, text: string): string | null {
    return this.secretIn(tail.toString('latin1') + text);
  }
}

/** A gRPC body's guard: a pass-through Transform that scans the message payloads, and keeps their last bytes. */
export class GrpcGuard extends Transform {
  readonly #scan: EchoScan<EchoTag>;
  readonly #reach: number;
  readonly #base64: boolean;
  #b64carry = '';
  #prefix = Buffer.alloc(0);
  #payloadLeft = 0;
  /** The last payload bytes, as far back as an echo could reach: trailers are read after them. */
  tail = Buffer.alloc(0);

  constructor(scan: EchoScan<EchoTag>, reach: number, encoding: 'binary' | 'base64') {
    super();
    this.#scan = scan;
    this.#reach = reach;
    this.#base64 = encoding === 'base64';
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.#payloads(this.#base64 ? this.#decode(chunk) : chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(null, chunk);
  }

  /** A message's payload bytes: scanned, kept as the tail; at a message's end, an echo left open blocks. */
  #read(payload: Buffer, messageEnds: boolean): void {
    guarded(() => this.#scan.push(payload));
    this.tail = Buffer.concat([this.tail, payload]).subarray(-this.#reach);
    if (!messageEnds) return;
    // A stream of messages can carry one value in pieces, each inside a field of its own (protobuf's tag and length
    // between them): the pieces never touch in the payload bytes. A message that ends inside an echo blocks.
    const open = this.#scan.partial();
    if (open !== null && open.matched >= MIN_FORM_BYTES) throw new EchoBlocked(open.tag.secretName);
  }

  override _flush(done: TransformCallback): void {
    try {
      guarded(() => this.#scan.end());
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }

  /** Whole base64 groups of 4; a padded group ends its piece, and the next begins aligned again. */
  #decode(chunk: Buffer): Buffer {
    const text = this.#b64carry + chunk.toString('latin1').replace(/[^A-Za-z0-9+/=_-]/g, '');
    const whole = text.length - (text.length % 4);
    this.#b64carry = text.slice(whole);
    const out: Buffer[] = [];
    for (let i = 0; i < whole; i += 4) out.push(Buffer.from(text.slice(i, i + 4), 'base64'));
    return Buffer.concat(out);
  }

  /** Reads a run of length-prefixed messages, prefixes taken out, message by message. */
  #payloads(bytes: Buffer): void {
    for (let i = 0; i < bytes.length;) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, bytes.length - i);
        this.#payloadLeft -= take;
        this.#read(bytes.subarray(i, i + take), this.#payloadLeft === 0);
        i += take;
        continue;
      }
      const take = Math.min(5 - this.#prefix.length, bytes.length - i);
      this.#prefix = Buffer.concat([this.#prefix, bytes.subarray(i, i + take)]);
      i += take;
      if (this.#prefix.length === 5) {
        this.#payloadLeft = this.#prefix.readUInt32BE(1);
        this.#prefix = Buffer.alloc(0);
      }
    }
  }
}

/** A scan that would need more threads than its bound fails closed, as an echo would. */
function guarded<R>(run: () => R): R {
  try {
    return run();
  } catch (err) {
    if (err instanceof ScanOverload) throw new EchoBlocked('(scan bound exceeded)');
    throw err;
  }
}
