import { Transform, type TransformCallback } from 'node:stream';
import { NeedleSet, Replacer, replacingStream, type Needle } from '../wire/index.js';

/** One secret whose echoes a response must not carry, with the values it is made of (composed secrets: several). */
export interface ScrubTarget {
  readonly secretName: string;
  readonly placeholder: string;
  /** The echo forms of each value (`echoForms()`), computed once per cached value by the caller. */
  readonly forms: readonly string[];
  /** redact: replace the echo with the placeholder; block: fail the response instead (`response_scrub`). */
  readonly mode: 'redact' | 'block';
}

interface Tag { readonly secretName: string; readonly block: boolean }

/** An echo of a secret whose `response_scrub` is `block`: the response must not reach the agent at all. */
export class EchoBlocked extends Error {
  override readonly name = 'EchoBlocked';
  constructor(readonly secretName: string) {
    super(`upstream echoed secret ${secretName}; response blocked`);
  }
}

const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

const MIN_NEEDLE = 8;

/**
 * The encodings an upstream might echo a secret value in, as latin1 needles: raw, percent-encoded and
 * JSON-escaped as common libraries write them, HTML-escaped, and base64 (standard and URL-safe) at all three
 * byte alignments. An echo inside a larger base64 blob — Basic
 * `user:secret` with a user of any length, a JSON document base64'd whole — encodes the secret starting at byte
 * offset 0, 1 or 2 of a 3-byte group; for each, the characters that depend only on the secret's bytes are the
 * same wherever the secret sits, so they are what is searched for. Forms shorter than 8 bytes are dropped:
 * replacing every "abc" in a body would corrupt it and protect nothing.
 */
export function echoForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = [value, ...percentForms(value), ...jsonForms(value), htmlEscaped(value)];
  const b64 = bytes.toString('base64');
  forms.push(b64, b64.replace(/=+$/, ''));
  for (let k = 0; k < 3; k++) {
    const shifted = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    // Skip the group holding the k filler bytes; stop before the group the next bytes would complete.
    const core = shifted.slice(k === 0 ? 0 : 4, Math.floor((k + bytes.length) / 3) * 4);
    forms.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return [...new Set(forms.map(latin1))].filter((f) => f.length >= MIN_NEEDLE);
}

/**
 * Percent-encodings as common libraries write them: JavaScript's encodeURIComponent, the same with lower-case
 * hex, form encoding (space as +, and !'()*~ escaped too), and Python's quote() (which leaves / alone).
 */
function percentForms(value: string): string[] {
  const uri = encodeURIComponent(value);
  const form = uri.replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replaceAll('%20', '+');
  const python = uri.replaceAll('%2F', '/').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [uri, form, python].flatMap((f) => [f, f.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())]);
}

/** JSON string escapes as common encoders write them: JSON.stringify, PHP's \/, Go's \u003c \u003e \u0026, and ASCII-only \uXXXX. */
function jsonForms(value: string): string[] {
  const plain = JSON.stringify(value).slice(1, -1);
  const go = plain.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  const ascii = plain.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return [plain, plain.replaceAll('/', '\\/'), go, ascii];
}

function htmlEscaped(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

/** The needles for a set of scrub targets: every form of every value, replaced by the secret's placeholder. */
export function scrubNeedles(targets: readonly ScrubTarget[]): NeedleSet<Tag> {
  const needles: Needle<Tag>[] = [];
  for (const t of targets) {
    const tag = { secretName: t.secretName, block: t.mode === 'block' };
    for (const find of t.forms) needles.push({ find, replace: latin1(t.placeholder), tag });
  }
  return new NeedleSet(needles);
}

/**
 * Replaces every echo of a secret in one response with its placeholder (K1), counting what it replaced. The
 * needle set is shared (built once per set of cached values); the counts are this response's.
 */
export class Scrubber {
  readonly counts = new Map<string, number>();
  readonly #set: NeedleSet<Tag>;

  readonly #blockAll: boolean;

  /** `blockAll`: every echo fails the response, whatever the secret's `response_scrub` says (see blocking()). */
  constructor(set: NeedleSet<Tag>, blockAll = false) {
    this.#set = set;
    this.#blockAll = blockAll;
  }

  /**
   * The same needles, each echo failing the response: for bodies whose framing counts bytes (gRPC's
   * length-prefixed messages, protobuf inside them), where a placeholder of another length would corrupt every
   * message after it, so an echo cannot be redacted and the stream is reset instead.
   */
  blocking(): Scrubber {
    return new Scrubber(this.#set, true);
  }

  get isEmpty(): boolean { return this.#set.isEmpty; }

  /** How many chars of what came before a text a needle can reach back into. */
  get reach(): number { return Math.max(0, this.#set.longest - 1); }

  /** The secret the first echo in `text` belongs to, or null. */
  secretIn(text: string): string | null {
    return this.#set.occurring(text)[0]?.tag.secretName ?? null;
  }

  readonly #onHit = (n: Needle<Tag>, count: number): void => {
    if (n.tag.block || this.#blockAll) throw new EchoBlocked(n.tag.secretName);
    this.counts.set(n.tag.secretName, (this.counts.get(n.tag.secretName) ?? 0) + count);
  };

  /** Scrubs a complete text (a header name or value, as Node hands it over: latin1). Throws EchoBlocked. */
  scrubText(text: string): string {
    return this.#set.replaceAll(text, this.#onHit).text;
  }

  /**
   * For gRPC bodies (this scrubber blocking): the bytes pass unchanged, while the messages' payloads, their
   * 5-byte length prefixes taken out, are read as one text: an echo cut across two messages of a stream, or
   * across chunks, is found there, and fails the body with EchoBlocked.
   */
  grpcGuard(): Transform {
    let tail = '';
    let prefix = Buffer.alloc(0);
    let payloadLeft = 0;
    return new Transform({
      transform: (chunk: Buffer, _enc, done: TransformCallback) => {
        const parts: Buffer[] = [];
        for (let i = 0; i < chunk.length;) {
          if (payloadLeft > 0) {
            const take = Math.min(payloadLeft, chunk.length - i);
            parts.push(chunk.subarray(i, i + take));
            payloadLeft -= take;
            i += take;
            continue;
          }
          const take = Math.min(5 - prefix.length, chunk.length - i);
          prefix = Buffer.concat([prefix, chunk.subarray(i, i + take)]);
          i += take;
          if (prefix.length === 5) {
            payloadLeft = prefix.readUInt32BE(1);
            prefix = Buffer.alloc(0);
          }
        }
        const text = tail + Buffer.concat(parts).toString('latin1');
        const found = this.secretIn(text);
        if (found !== null) {
          done(new EchoBlocked(found));
          return;
        }
        tail = text.slice(-this.reach);
        done(null, chunk);
      },
    });
  }

  /** The body scrubber without a stream (forward.ts's inline relay): push() and end() throw EchoBlocked. */
  inline(): Replacer<Tag> {
    return new Replacer(this.#set, this.#onHit);
  }

  /** A body transform: scrubbed bytes out, holding back only a possible partial echo. Fails with EchoBlocked. */
  stream(): Transform {
    return replacingStream(this.#set, { onHit: this.#onHit });
  }
}
