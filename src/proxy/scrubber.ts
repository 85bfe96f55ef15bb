import { Transform, type TransformCallback } from 'node:stream';

/** One echo form of one injected secret, and what replaces it. Held as latin1 strings: one char per byte. */
interface Needle { readonly secretName: string; readonly find: string; readonly replace: string; readonly block: boolean }

export interface ScrubTarget {
  readonly secretName: string;
  readonly placeholder: string;
  /** The echo forms of each secret value injected (composed secrets inject several): `echoForms()` of each. */
  readonly forms: readonly string[];
  /** The text written at the site (e.g. `Basic dXNlcjpzZWNyZXQ=`), whose own encodings may echo back too. */
  readonly rendered: string;
  /** redact: replace the echo with the placeholder; block: fail the response instead (`response_scrub`). */
  readonly mode: 'redact' | 'block';
}

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
 * The encodings an upstream might echo a secret value in, as latin1 needles: raw, standard and URL-safe base64,
 * percent-encoded and JSON-escaped. Forms shorter than 8 bytes are dropped: replacing every "abc" in a body would
 * corrupt it and protect nothing. Pure and per value, so the pipeline computes it once per cached secret.
 */
export function echoForms(value: string): string[] {
  const b64 = Buffer.from(value, 'utf8').toString('base64');
  const forms = [value, b64, b64.replace(/=+$/, ''), Buffer.from(value, 'utf8').toString('base64url'), encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];
  return [...new Set(forms.map(latin1))].filter((f) => f.length >= MIN_NEEDLE);
}

/**
 * Replaces every echo of an injected secret in a response with its placeholder (K1). Streaming: it holds back
 * only the longest tail that could still begin an echo, so a server-sent event that cannot be part of one is
 * passed on at once.
 */
export class Scrubber {
  #needles: Needle[] = [];
  #maxLen = 0;
  readonly #seen = new Set<string>();
  readonly counts = new Map<string, number>();

  constructor(targets: readonly ScrubTarget[]) {
    for (const t of targets) this.add(t);
  }

  /** Adds a secret injected later in the request (a body injector resolves as the body streams). */
  add(t: ScrubTarget): void {
    // The rendered Basic credentials (base64 of user:secret) are caught whole, as sent.
    const rendered = t.rendered.startsWith('Basic ') ? [latin1(t.rendered.slice(6))] : [];
    for (const find of [...t.forms, ...rendered]) {
      if (find.length < MIN_NEEDLE || this.#seen.has(find)) continue;
      this.#seen.add(find);
      this.#needles.push({ secretName: t.secretName, find, replace: latin1(t.placeholder), block: t.mode === 'block' });
    }
    // Longest first, so a base64 form is replaced whole before a shorter form inside it could split it.
    this.#needles.sort((a, b) => b.find.length - a.find.length);
    this.#maxLen = this.#needles.reduce((m, n) => Math.max(m, n.find.length), 0);
  }

  get isEmpty(): boolean { return this.#needles.length === 0; }

  /** Scrubs a complete text (a header value, as Node hands it over: latin1). Throws EchoBlocked. */
  scrubText(text: string): string {
    return this.#replace(text);
  }

  #replace(s: string): string {
    let out = s;
    for (const n of this.#needles) {
      if (!out.includes(n.find)) continue;
      if (n.block) throw new EchoBlocked(n.secretName);
      const parts = out.split(n.find);
      this.counts.set(n.secretName, (this.counts.get(n.secretName) ?? 0) + parts.length - 1);
      out = parts.join(n.replace);
    }
    return out;
  }

  /** How many trailing chars of `s` might be the start of a needle. */
  #holdback(s: string): number {
    for (let k = Math.min(this.#maxLen - 1, s.length); k > 0; k--) {
      const tail = s.slice(s.length - k);
      if (this.#needles.some((n) => n.find.startsWith(tail))) return k;
    }
    return 0;
  }

  /** A body transform: scrubbed bytes out, holding back only a possible partial echo. */
  stream(): Transform {
    let carry = '';
    return new Transform({
      transform: (chunk: Buffer, _enc, done: TransformCallback) => {
        let text: string;
        try {
          text = this.#replace(carry + chunk.toString('latin1'));
        } catch (err) {
          done(err as Error);
          return;
        }
        const hold = this.#holdback(text);
        carry = text.slice(text.length - hold);
        const ready = text.slice(0, text.length - hold);
        done(null, ready.length > 0 ? Buffer.from(ready, 'latin1') : undefined);
      },
      flush: (done: TransformCallback) => {
        try {
          done(null, carry.length > 0 ? Buffer.from(this.#replace(carry), 'latin1') : undefined);
        } catch (err) {
          done(err as Error);
        }
      },
    });
  }
}
