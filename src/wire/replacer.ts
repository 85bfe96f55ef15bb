import { Transform, type TransformCallback } from 'node:stream';

/**
 * One streaming find-and-replace for every byte stream keyswap rewrites: placeholders in request bodies, echoes
 * of secrets in responses. Works on bytes held as latin1 strings (one char per byte), never on decoded text, so
 * a multi-byte character split across chunks is never mangled.
 */
export interface Needle<T> {
  /** latin1, at least one byte. */
  readonly find: string;
  /** What replaces it; null leaves the bytes as they are (a needle that is only watched for). */
  readonly replace: string | null;
  readonly tag: T;
}

/** An immutable set of needles, longest first, with every proper prefix indexed for the holdback. */
export class NeedleSet<T> {
  readonly needles: readonly Needle<T>[];
  readonly #prefixes = new Set<string>();
  readonly #maxLen: number;

  constructor(needles: readonly Needle<T>[]) {
    const seen = new Set<string>();
    const unique = needles.filter((n) => n.find.length > 0 && !seen.has(n.find) && seen.add(n.find));
    // Longest first, so a base64 form is replaced whole before a shorter form inside it could split it.
    this.needles = unique.sort((a, b) => b.find.length - a.find.length);
    this.#maxLen = this.needles[0]?.find.length ?? 0;
    for (const n of this.needles) for (let k = 1; k < n.find.length; k++) this.#prefixes.add(n.find.slice(0, k));
  }

  get isEmpty(): boolean { return this.needles.length === 0; }

  /** The length of the longest needle: a needle can span at most this many chars less one of what came before. */
  get longest(): number { return this.#maxLen; }

  /** The needles that occur in `text`. */
  occurring(text: string): Needle<T>[] {
    return this.needles.filter((n) => text.includes(n.find));
  }

  /**
   * Replaces every occurrence in one left-to-right pass: at each position the longest needle wins, and replaced
   * text is never scanned again (a secret whose value contains another placeholder is not resolved twice).
   * `onHit` sees each needle found and how often (it may throw to stop). `end` is where the last replacement ends
   * in the output: bytes before it are final.
   */
  replaceAll(text: string, onHit?: (needle: Needle<T>, count: number) => void): { readonly text: string; readonly end: number } {
    const next = this.needles.map((n) => text.indexOf(n.find));
    if (next.every((i) => i < 0)) return { text, end: 0 };
    const counts = new Map<Needle<T>, number>();
    let out = '';
    let at = 0;
    for (;;) {
      let best = -1;
      for (let k = 0; k < next.length; k++) {
        const i = next[k] ?? -1;
        if (i >= 0 && (best < 0 || i < (next[best] ?? -1))) best = k; // ties keep the longer (earlier) needle
      }
      if (best < 0) break;
      const n = this.needles[best] as Needle<T>;
      const i = next[best] ?? 0;
      out += text.slice(at, i) + (n.replace ?? n.find);
      at = i + n.find.length;
      counts.set(n, (counts.get(n) ?? 0) + 1);
      for (let k = 0; k < next.length; k++) {
        if ((next[k] ?? -1) >= 0 && (next[k] ?? 0) < at) next[k] = text.indexOf((this.needles[k] as Needle<T>).find, at);
      }
    }
    const end = out.length;
    for (const [n, c] of counts) onHit?.(n, c);
    return { text: out + text.slice(at), end };
  }

  /** How many trailing chars of `s` could be the start of a needle, and so must wait for the next chunk. */
  holdback(s: string): number {
    for (let k = Math.min(this.#maxLen - 1, s.length); k > 0; k--) {
      if (this.#prefixes.has(s.slice(s.length - k))) return k;
    }
    return 0;
  }
}

export interface ReplacingStreamHooks<T> {
  /** Runs before the bytes holding these needles are released; the stream waits for it (and fails with it). */
  readonly beforeRelease?: (found: readonly Needle<T>[]) => Promise<void>;
  /** Runs for each replacement made; may throw to fail the stream. */
  readonly onHit?: (needle: Needle<T>, count: number) => void;
}

/**
 * `set` applied to a byte stream in constant memory, without a stream of its own: it holds back only a tail that
 * could still begin a needle, so one split across chunks is still found, and a chunk that cannot hold one passes
 * at once. push() and end() return what may be released (latin1); they throw what `onHit` throws.
 */
export class Replacer<T> {
  #carry = '';

  constructor(readonly set: NeedleSet<T>, readonly onHit?: (needle: Needle<T>, count: number) => void) {}

  /** The text a chunk adds, with what was held back before it: what push() would scan. */
  pending(chunk: Buffer): string {
    return this.#carry + chunk.toString('latin1');
  }

  push(chunk: Buffer): string {
    return this.step(this.pending(chunk), false);
  }

  end(): string {
    return this.step(this.#carry, true);
  }

  step(text: string, final: boolean): string {
    const out = this.set.replaceAll(text, this.onHit);
    // Only unreplaced bytes are held back, so a replacement is never rescanned with the next chunk.
    const hold = final ? 0 : Math.min(this.set.holdback(out.text), out.text.length - out.end);
    this.#carry = out.text.slice(out.text.length - hold);
    return out.text.slice(0, out.text.length - hold);
  }
}

/** A Replacer as a Transform, whose `beforeRelease` hook may hold bytes back until it resolves. */
export function replacingStream<T>(set: NeedleSet<T>, hooks: ReplacingStreamHooks<T> = {}): Transform {
  const replacer = new Replacer(set, hooks.onHit);
  const step = (text: string, final: boolean, done: TransformCallback): void => {
    const emit = (): void => {
      let ready: string;
      try {
        ready = replacer.step(text, final);
      } catch (err) {
        done(err as Error);
        return;
      }
      done(null, ready.length > 0 ? Buffer.from(ready, 'latin1') : undefined);
    };
    const found = hooks.beforeRelease === undefined ? [] : set.occurring(text);
    if (found.length === 0 || hooks.beforeRelease === undefined) {
      emit();
      return;
    }
    hooks.beforeRelease(found).then(emit, (err: unknown) => done(err as Error));
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      step(replacer.pending(chunk), false, done);
    },
    flush(done: TransformCallback) {
      step(replacer.pending(Buffer.alloc(0)), true, done);
    },
  });
}
