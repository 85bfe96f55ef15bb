import { AMPERSAND, BACKSLASH, EQUALS, FAMILY_HTML, FAMILY_PERCENT, KIND_BYTE, MAX_SPELLING, PERCENT, PLUS, readSpellings, Spellings } from './spellings.js';

/*
 * The decoder-matcher: finds echoes of secret forms in text, each character of an echo spelled in any way
 * spellings.ts reads (raw, JSON/JavaScript escapes, HTML references, percent-encoding), independently of its
 * neighbours, and maps each echo back to the bytes that spelled it. It reads bytes, never decoded text, so a
 * multi-byte character is matched byte by byte and never mangled at a chunk boundary.
 *
 * It is a set of threads, one per partial match: (form, bytes matched, where the echo began, where its next
 * character begins). A position where no thread waits and no form can begin is skipped by a table lookup, so text
 * without echoes costs one load per byte and two for the few bytes that could begin one.
 */

/** One thing to find, and what replaces it. */
export interface EchoForm<T> {
  /** A value's UTF-8, or an ASCII encoding of its bytes (base64, hex). At least 2 bytes. */
  readonly bytes: Buffer;
  /** Letters match in either case (hex). */
  readonly foldCase: boolean;
  /** The placeholder: written in the echo's spelling family where it has one (respell()). */
  readonly replace: string;
  readonly tag: T;
}

/** Called once per echo found; may throw to stop the scan (a `block` secret). */
export type OnEcho<T> = (tag: T) => void;

const EMPTY = Buffer.alloc(0);
const STRIDE = 5;
const FORM = 0;
const AT = 1;
const START = 2;
const WAIT = 3;
const FAMILY = 4;
const CLASS_START = 1;
const CLASS_ESCAPE = 2;
const PAIR_RAW = 1;
const PAIR_ESCAPE = 2;

/** Past this many live partial matches the text is refused rather than scanned: only a degenerate secret (`aaaa…`) gets near it. */
const MAX_THREADS = 4096;

/** Thrown when a scan would need more than MAX_THREADS threads: the response fails closed. */
export class ScanOverload extends Error {
  override readonly name = 'ScanOverload';
  constructor() { super('response scan exceeded its thread bound'); }
}

/** An immutable, compiled set of forms: built once per set of values, shared by every scan of every response. */
export class EchoMatcher<T> {
  readonly forms: readonly EchoForm<T>[];
  /** Forms by their first byte (both cases of a letter for folding forms). */
  readonly byFirst: readonly (readonly number[])[];
  /** Per byte: CLASS_START if a form begins with it, CLASS_ESCAPE if it may begin an escape. */
  readonly classOf = new Uint8Array(256);
  /** Per pair of bytes: PAIR_RAW if some form begins with them, PAIR_ESCAPE if an escape begins at either. */
  readonly pairs = new Uint8Array(65536);
  /** Per hashed triple of bytes: 1 if some form may begin with them (a filter: collisions only cost a look). */
  readonly triples = new Uint8Array(65536);
  readonly plusIsSpace: boolean;
  /** The most bytes of text one echo can take. */
  readonly longestSpan: number;

  constructor(forms: readonly EchoForm<T>[]) {
    const seen = new Set<string>();
    const key = (f: EchoForm<T>): string => `${f.foldCase ? 'i' : 's'}${f.bytes.toString('latin1')}`;
    this.forms = forms.filter((f) => f.bytes.length >= 3 && !seen.has(key(f)) && seen.add(key(f)));
    const byFirst: number[][] = Array.from({ length: 256 }, () => []);
    this.plusIsSpace = this.forms.some((f) => f.bytes.includes(0x20));
    let longest = 0;
    this.forms.forEach((f, i) => {
      longest = Math.max(longest, f.bytes.length);
      for (const a of variants(f.bytes[0] as number, f.foldCase)) {
        if (!byFirst[a]?.includes(i)) byFirst[a]?.push(i);
        this.classOf[a] = CLASS_START;
        for (const b of variants(f.bytes[1] as number, f.foldCase)) {
          this.pairs[(a << 8) | b] = PAIR_RAW;
          for (const c of variants(f.bytes[2] as number, f.foldCase)) this.triples[tripleHash(a, b, c)] = 1;
        }
      }
    });
    const escapes = [BACKSLASH, AMPERSAND, PERCENT, EQUALS, ...(this.plusIsSpace ? [PLUS] : [])];
    for (const e of escapes) this.classOf[e] = CLASS_ESCAPE;
    for (let b = 0; b < 256; b++) {
      for (const e of escapes) {
        this.pairs[(e << 8) | b] = PAIR_ESCAPE;
        if (this.classOf[b] === CLASS_START) this.pairs[(b << 8) | e] = PAIR_ESCAPE;
      }
    }
    this.byFirst = byFirst;
    this.longestSpan = longest * MAX_SPELLING;
  }

  get isEmpty(): boolean { return this.forms.length === 0; }

  /** A streaming scan: push() and end() return what may be released, echoes replaced. */
  scan(onEcho?: OnEcho<T>): EchoScan<T> {
    return new EchoScan(this, onEcho);
  }

  /**
   * The scan whole texts reuse: one runs from start to end within a call, so its scratch arrays (seven typed arrays,
   * allocated per scan before) serve every header name and value of every response. What a scan cut short by a
   * throw left is cleared when the next one starts.
   */
  #whole: EchoScan<T> | null = null;

  #wholeScan(onEcho: OnEcho<T> | undefined): EchoScan<T> {
    const scan = (this.#whole ??= new EchoScan(this));
    scan.restart(onEcho);
    return scan;
  }

  /** A whole text with every echo replaced. */
  replaceAll(text: Buffer, onEcho?: OnEcho<T>): Buffer {
    return this.#wholeScan(onEcho).finish(text);
  }

  /** The tag of the first echo in a whole text, or null. */
  firstIn(text: Buffer): T | null {
    let found: T | null = null;
    const stop = new Error('found');
    try {
      this.#wholeScan((tag) => { found = tag; throw stop; }).finish(text);
    } catch (err) {
      if (err !== stop) throw err;
    }
    return found;
  }
}

interface Match { start: number; end: number; replace: Buffer }

/**
 * One byte stream's scan. The text not yet released is kept (`carry`): from the start of the oldest partial
 * match, or of an escape cut off by the chunk's end. Everything before that is final and released.
 */
export class EchoScan<T> {
  readonly #m: EchoMatcher<T>;
  #onEcho: OnEcho<T> | undefined;
  #carry: Buffer = EMPTY;
  /** Position in `carry` up to which the scan has run. */
  #scanned = 0;
  /**
   * Threads, STRIDE numbers each: form, bytes matched, start of the echo, position of its next character, families
   * used. A flat typed array with a count: this is the inner loop of every scrubbed response.
   */
  #threads = new Int32Array(STRIDE * 16);
  #count = 0;
  #matches: Match[] = [];
  /** The threads due at the position being read (reused). */
  #due = new Int32Array(STRIDE * 16);
  readonly #sp = new Spellings();

  constructor(m: EchoMatcher<T>, onEcho?: OnEcho<T>) {
    this.#m = m;
    this.#onEcho = onEcho;
  }

  /** Scans the next chunk; returns the bytes that are now final, echoes replaced. Throws what onEcho throws. */
  push(chunk: Buffer): Buffer {
    const text = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    const stopAt = this.#run(text, this.#scanned, false);
    return this.#release(text, stopAt, false);
  }

  /** The end of the stream: everything held back, scanned to the end. */
  end(): Buffer {
    const stopAt = this.#run(this.#carry, this.#scanned, true);
    return this.#release(this.#carry, stopAt, true);
  }

  /** The furthest partial echo still open at the end of what was pushed: its form's tag and bytes matched, or null. */
  partial(): { readonly tag: T; readonly matched: number } | null {
    let best: { tag: T; matched: number } | null = null;
    const t = this.#threads;
    for (let i = 0; i < this.#count; i++) {
      const matched = t[i * STRIDE + AT] as number;
      if (best === null || matched > best.matched) best = { tag: (this.#m.forms[t[i * STRIDE + FORM] as number] as EchoForm<T>).tag, matched };
    }
    return best;
  }

  /** Back to a fresh scan, reporting to `onEcho`; the scratch arrays are kept. */
  restart(onEcho: OnEcho<T> | undefined): void {
    this.#onEcho = onEcho;
    this.#carry = EMPTY;
    this.#scanned = 0;
    this.#count = 0;
    this.#matches.length = 0;
    this.#sp.count = 0;
  }

  /** A whole text in one call (only on a fresh scan). */
  finish(text: Buffer): Buffer {
    this.#carry = text;
    return this.end();
  }

  /** Scans from `p`; returns where it stopped (text.length, or an escape the text cuts off). */
  #run(text: Buffer, from: number, isFinal: boolean): number {
    const m = this.#m;
    const cls = m.classOf;
    const pairs = m.pairs;
    const triples = m.triples;
    const n = text.length;
    let p = from;
    while (p < n) {
      if (this.#count === 0) {
        // The fast path: nothing in progress, so only where the next bytes could begin an echo needs a look: a
        // pair that begins a form and a third byte that may continue it, or an escape.
        let b = text[p] as number;
        for (; p + 1 < n; p++) {
          const b1 = text[p + 1] as number;
          const pair = pairs[(b << 8) | b1] as number;
          if (pair !== 0) {
            if (pair === PAIR_ESCAPE) break;
            if (p + 2 >= n) {
              if (isFinal) { b = b1; continue; }
              break;
            }
            const b2 = text[p + 2] as number;
            if (triples[tripleHash(b, b1, b2)] === 1 || cls[b2] === CLASS_ESCAPE) break;
          }
          b = b1;
        }
        // The last byte may begin an escape or an echo that the next chunk completes.
        if (p + 1 >= n && (isFinal || cls[b] === 0)) break;
      }
      if (!this.#step(text, p, isFinal)) return p;
      p++;
    }
    return n;
  }

  /** Every reading of the text at `p`: threads waiting there advance or die, and new ones begin. */
  #step(text: Buffer, p: number, isFinal: boolean): boolean {
    const sp = this.#sp;
    const count = readSpellings(text, p, isFinal, this.#m.plusIsSpace, sp);
    if (count < 0) return false;
    let dueCount = 0;
    if (this.#count > 0) {
      // Take out the threads due here (each is advanced by a spelling or dies), keeping the rest in place.
      const t = this.#threads;
      if (this.#due.length < t.length) this.#due = new Int32Array(t.length);
      const due = this.#due;
      let kept = 0;
      for (let i = 0; i < this.#count; i++) {
        const o = i * STRIDE;
        const into = t[o + WAIT] === p ? due : t;
        const at = into === due ? dueCount++ * STRIDE : kept++ * STRIDE;
        for (let k = 0; k < STRIDE; k++) into[at + k] = t[o + k] as number;
      }
      this.#count = kept;
      for (let d = 0; d < dueCount; d++) {
        const o = d * STRIDE;
        for (let a = 0; a < count; a++) this.#advance(due[o + FORM] as number, due[o + AT] as number, due[o + START] as number, p, a, due[o + FAMILY] as number);
      }
    }
    const byFirst = this.#m.byFirst;
    for (let a = 0; a < count; a++) {
      const candidates = byFirst[firstByteOf(sp, a)] as readonly number[];
      for (let c = 0; c < candidates.length; c++) this.#advance(candidates[c] as number, 0, p, p, a, 0);
    }
    if (this.#count > MAX_THREADS) throw new ScanOverload();
    return true;
  }

  /** Thread (form f, `j` bytes matched, echo from `s`) read through spelling `a` at `p`: it advances, matches or dies. */
  #advance(f: number, j: number, s: number, p: number, a: number, fam: number): void {
    const sp = this.#sp;
    const form = this.#m.forms[f] as EchoForm<T>;
    const next = matchSpelling(form, j, sp, a);
    if (next < 0) return;
    const w = p + (sp.length[a] as number);
    const families = fam | (sp.family[a] as number);
    if (next === form.bytes.length) {
      this.#matched(s, w, form, families);
      return;
    }
    // One thread per (form, progress, next position): two readings that lead to the same place are one, and the one
    // that began first is kept, as a decoder reading left to right would read it (`\x30` is one escape, not `\x3`
    // followed by a raw `0`).
    let t = this.#threads;
    for (let i = 0; i < this.#count; i++) {
      const o = i * STRIDE;
      if (t[o + FORM] === f && t[o + AT] === next && t[o + WAIT] === w) {
        if (s < (t[o + START] as number)) t[o + START] = s;
        return;
      }
    }
    if ((this.#count + 1) * STRIDE > t.length) {
      const grown = new Int32Array(t.length * 2);
      grown.set(t);
      this.#threads = t = grown;
    }
    const o = this.#count++ * STRIDE;
    t[o + FORM] = f;
    t[o + AT] = next;
    t[o + START] = s;
    t[o + WAIT] = w;
    t[o + FAMILY] = families;
  }

  /**
   * An echo at [start, end), kept in order; echoes that overlap are replaced as their union. That is the
   * leftmost-longest reading a decoder makes: `\u005c` ending a secret whose last character is `\` is one echo
   * to its end, not one that stops at the backslash and leaves `u005c` behind.
   */
  #matched(start: number, end: number, form: EchoForm<T>, families: number): void {
    this.#onEcho?.(form.tag);
    const replace = Buffer.from(respell(form.replace, families), 'utf8');
    const list = this.#matches;
    let i = list.length;
    while (i > 0 && (list[i - 1] as Match).end > start) i--;
    let merged: Match = { start, end, replace };
    let k = i;
    while (k < list.length && (list[k] as Match).start < merged.end) {
      const o = list[k] as Match;
      merged = { start: Math.min(o.start, merged.start), end: Math.max(o.end, merged.end), replace: o.start <= merged.start ? o.replace : merged.replace };
      k++;
    }
    list.splice(i, k - i, merged);
  }

  /** Releases the text before the oldest thing still open, echoes replaced, and keeps the rest. */
  #release(text: Buffer, stopAt: number, isFinal: boolean): Buffer {
    if (isFinal) this.#count = 0;
    const t = this.#threads;
    let boundary = isFinal ? text.length : stopAt;
    for (let i = 0; i < this.#count; i++) boundary = Math.min(boundary, t[i * STRIDE + START] as number);
    const list = this.#matches;
    for (const mt of list) if (mt.start < boundary && mt.end > boundary) boundary = mt.start;
    let out: Buffer;
    let used = 0;
    while (used < list.length && (list[used] as Match).end <= boundary) used++;
    if (used === 0) out = boundary === text.length ? text : text.subarray(0, boundary);
    else {
      const parts: Buffer[] = [];
      let from = 0;
      for (const mt of list.splice(0, used)) {
        parts.push(text.subarray(from, mt.start), mt.replace);
        from = mt.end;
      }
      parts.push(text.subarray(from, boundary));
      out = Buffer.concat(parts);
    }
    // A copy: the carry outlives the chunk it came from, which its sender may reuse.
    this.#carry = boundary === text.length ? EMPTY : Buffer.from(text.subarray(boundary));
    this.#scanned = stopAt - boundary;
    if (boundary > 0) {
      for (let i = 0; i < this.#count; i++) {
        t[i * STRIDE + START] = (t[i * STRIDE + START] as number) - boundary;
        t[i * STRIDE + WAIT] = (t[i * STRIDE + WAIT] as number) - boundary;
      }
      for (const mt of list) {
        mt.start -= boundary;
        mt.end -= boundary;
      }
    }
    return out;
  }
}

/** How many bytes of the form, from `j`, spelling `a` stands for; -1 when it differs. */
function matchSpelling<T>(form: EchoForm<T>, j: number, sp: Spellings, a: number): number {
  const bytes = form.bytes;
  const fold = form.foldCase;
  if (sp.kind[a] === KIND_BYTE) return j < bytes.length && same(sp.first[a] as number, bytes[j] as number, fold) ? j + 1 : -1;
  const k = matchCodePoint(bytes, j, sp.first[a] as number, fold);
  const second = sp.second[a] as number;
  return k < 0 || second < 0 ? k : matchCodePoint(bytes, k, second, fold);
}

/** `cp` as UTF-8 against the form's bytes from `j`: the position after it, or -1. */
function matchCodePoint(bytes: Buffer, j: number, cp: number, fold: boolean): number {
  if (cp < 0x80) return j < bytes.length && same(cp, bytes[j] as number, fold) ? j + 1 : -1;
  let n: number;
  let lead: number;
  if (cp < 0x800) { n = 2; lead = 0xc0 | (cp >> 6); }
  else if (cp < 0x10000) { n = 3; lead = 0xe0 | (cp >> 12); }
  else { n = 4; lead = 0xf0 | (cp >> 18); }
  if (j + n > bytes.length || bytes[j] !== lead) return -1;
  for (let i = 1; i < n; i++) {
    if (bytes[j + i] !== (0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f))) return -1;
  }
  return j + n;
}

function same(a: number, b: number, fold: boolean): boolean {
  if (a === b) return true;
  const lower = a | 0x20;
  return fold && lower >= 0x61 && lower <= 0x7a && lower === (b | 0x20);
}

/** The first byte a spelling stands for (a code point's UTF-8 lead byte). */
function firstByteOf(sp: Spellings, a: number): number {
  const v = sp.first[a] as number;
  if (sp.kind[a] === KIND_BYTE || v < 0x80) return v;
  if (v < 0x800) return 0xc0 | (v >> 6);
  if (v < 0x10000) return 0xe0 | (v >> 12);
  return 0xf0 | (v >> 18);
}

function tripleHash(a: number, b: number, c: number): number {
  return (a * 7919 + b * 257 + c) & 0xffff;
}

function variants(b: number, fold: boolean): number[] {
  if (!fold) return [b];
  const lower = b | 0x20;
  return lower >= 0x61 && lower <= 0x7a ? [lower, lower & ~0x20] : [b];
}

/**
 * The placeholder in the echo's own family, where it used one family only: HTML-escaped in an HTML echo,
 * percent-encoded in a percent-encoded one; raw otherwise (placeholders hold no quote or backslash, so raw is valid
 * inside a JSON string).
 */
function respell(placeholder: string, families: number): string {
  if (families === FAMILY_HTML) return placeholder.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
  if (families === FAMILY_PERCENT) return placeholder.replace(/[^A-Za-z0-9\-._~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return placeholder;
}
