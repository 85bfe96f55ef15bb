import { DecodingMode, EntityDecoder, htmlDecodeTree } from 'entities/decode';

/*
 * How one character of an echo may be written. An upstream's encoder picks a spelling per character (Gson writes
 * `=` as \u003d, .NET `+` as \u002B, Go's html/template `+` as &#43;), so an echo is matched character by character
 * over every spelling at once, never as a list of whole-value spellings (STYLE.md §11). This module answers one
 * question: at this position of a response, which characters (or bytes) could the text be spelling, and how long is
 * each spelling? The matcher (echo-matcher.ts) asks it only where a match could begin or continue.
 */

/** A spelling family, as bits: the matcher records which ones an echo used, to write the placeholder back in kind. */
export const FAMILY_JSON = 1;
export const FAMILY_HTML = 2;
export const FAMILY_PERCENT = 4;
/** CSS escapes, quoted-printable: the placeholder goes back raw. */
export const FAMILY_OTHER = 8;

/** More readings than one position has: one layer gives at most four, a second adds at most three per escape. */
const CAPACITY = 16;

/**
 * The longest spelling of one character the matcher decodes. HTML allows any number of leading zeros in a numeric
 * reference (`&#x0000…2b;`); past this many bytes a reference is read as its raw characters. No encoder pads like
 * that: only an upstream bent on getting a value past keyswap would, and such an upstream can as well reverse or
 * encrypt what it echoes (docs/attacks.md, "Not stopped"). The bound keeps the hold-back of a streaming body finite:
 * at most this many bytes per byte of the longest secret form.
 */
export const MAX_SPELLING = 40;

/**
 * The alternatives at one position, in preallocated arrays (the scan runs per byte; no allocation per call). Each
 * alternative is a code point (compared as its UTF-8 bytes) or a raw byte, with its length in the text; a named
 * entity can stand for two code points.
 */
export class Spellings {
  count = 0;
  readonly kind = new Uint8Array(CAPACITY); // KIND_CODE_POINT | KIND_BYTE
  readonly first = new Int32Array(CAPACITY); // the code point or byte
  readonly second = new Int32Array(CAPACITY); // a second code point (some named entities), or -1
  readonly length = new Int32Array(CAPACITY); // bytes of text the spelling takes
  readonly family = new Uint8Array(CAPACITY);

  add(kind: number, first: number, second: number, length: number, family: number): void {
    if (this.count === CAPACITY) return;
    // The same reading twice (\x41 as a code point and as a byte) would only make two identical threads.
    for (let i = 0; i < this.count; i++) {
      if (this.first[i] === first && this.second[i] === second && this.length[i] === length && (this.kind[i] === kind || first < 0x80)) return;
    }
    const i = this.count++;
    this.kind[i] = kind;
    this.first[i] = first;
    this.second[i] = second;
    this.length[i] = length;
    this.family[i] = family;
  }
}

export const KIND_CODE_POINT = 0;
export const KIND_BYTE = 1;

/** Bytes that may begin an escape: `\` (JSON, JavaScript, C-like), `&` (HTML/XML), `%` (percent-encoding). */
export const BACKSLASH = 0x5c;
export const AMPERSAND = 0x26;
export const PERCENT = 0x25;
export const PLUS = 0x2b;
export const EQUALS = 0x3d;

const ONE_LETTER: Record<number, number> = {
  0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x66: 0x0c, 0x76: 0x0b, 0x61: 0x07, 0x65: 0x1b, // n r t b f v a e
};

const entityOut: number[] = [];
const entities = new EntityDecoder(htmlDecodeTree, (cp) => { entityOut.push(cp); });

/**
 * Fills `out` with every reading of the text at `p` (the raw byte always first) and returns their number, or -1 when
 * an escape begins at `p` but the text ends before it can be read whole (a streaming body: wait for more bytes).
 * With `isFinal`, the text ends for good and what is there is read as is.
 * `plusIsSpace`: `+` also reads as a space (form encoding), asked for only when some secret holds a space.
 *
 * Two layers: stacks escape what is already escaped (a login redirect URL-encodes a URL holding `%2B`, giving
 * `%252B`; Go's encoding/json wraps html/template's `&#43;` as `\u0026#43;`; PHP json_encode of JSON gives `\\\/`).
 * An escape that spells an escape's first character (`%25`, `\\`, `&amp;`, `\u0026`, `%5C`…) may begin an inner
 * escape, each of whose characters may be spelled once more; three layers are not read (docs/attacks.md).
 */
export function readSpellings(text: Buffer, p: number, isFinal: boolean, plusIsSpace: boolean, out: Spellings): number {
  const count = readOne(text, p, isFinal, plusIsSpace, out);
  if (count <= 1) return count;
  for (let a = 0; a < count; a++) {
    const first = out.first[a] as number;
    if ((out.length[a] as number) > 1 && (first === PERCENT || first === BACKSLASH || first === AMPERSAND) && out.second[a] === -1) {
      if (inner(text, p, a, isFinal, out) < 0) return -1;
    }
  }
  return out.count;
}

/** The longest inner escape, in characters, read behind an escaped first character. */
const INNER_CHARS = 14;
const gathered = new Spellings();
const decodedInner = new Spellings();

/**
 * The inner escape behind alternative `a` at `p` (an escape spelling `%`, `\` or `&`): its characters are read one
 * spelling each (an escaped character that is visible ASCII is taken over its raw reading), the escape is read from
 * them, and each reading is added to `out` with the length it takes in the text. -1: the text ends too soon.
 */
function inner(text: Buffer, p: number, a: number, isFinal: boolean, out: Spellings): number {
  const chars: number[] = [out.first[a] as number];
  const ends: number[] = [p + (out.length[a] as number)];
  let q = ends[0] as number;
  let complete = true;
  while (chars.length < INNER_CHARS && q - p < MAX_SPELLING) {
    if (q >= text.length) {
      complete = isFinal;
      break;
    }
    const n = readOne(text, q, isFinal, false, gathered);
    if (n < 0) {
      complete = false;
      break;
    }
    let pick = 0;
    for (let i = 1; i < n; i++) {
      const c = gathered.first[i] as number;
      if ((gathered.length[i] as number) > 1 && gathered.second[i] === -1 && c >= 0x21 && c <= 0x7e) pick = i;
    }
    chars.push(gathered.first[pick] as number);
    q += gathered.length[pick] as number;
    ends.push(q);
  }
  const n = readOne(Buffer.from(chars), 0, complete || chars.length >= INNER_CHARS || q - p >= MAX_SPELLING, false, decodedInner);
  if (n < 0) return -1;
  const outer = out.family[a] as number;
  for (let i = 1; i < n; i++) {
    const len = decodedInner.length[i] as number;
    out.add(decodedInner.kind[i] as number, decodedInner.first[i] as number, decodedInner.second[i] as number, (ends[len - 1] as number) - p, outer | (decodedInner.family[i] as number));
  }
  return out.count;
}

/** One layer: the raw byte, and each single escape that begins at `p`. */
function readOne(text: Buffer, p: number, isFinal: boolean, plusIsSpace: boolean, out: Spellings): number {
  out.count = 0;
  const b = text[p] as number;
  out.add(KIND_BYTE, b, -1, 1, 0);
  const end = text.length;
  switch (b) {
    case PLUS:
      if (plusIsSpace) out.add(KIND_BYTE, 0x20, -1, 1, FAMILY_PERCENT);
      return out.count;
    case PERCENT:
    case EQUALS: { // percent-encoding; quoted-printable (=3D) in mail bodies and MIME parts
      const h = hexRun(text, p + 1, 2);
      if (h.digits === 2) out.add(KIND_BYTE, h.value, -1, 3, b === PERCENT ? FAMILY_PERCENT : FAMILY_OTHER);
      else if (p + 1 + h.digits >= end && !isFinal) return -1;
      return out.count;
    }
    case BACKSLASH:
      return backslash(text, p, isFinal, out);
    case AMPERSAND:
      return reference(text, p, isFinal, out);
    default:
      return out.count;
  }
}

/** JSON and JavaScript escapes, and their kin in Python, Go, C, Perl, Ruby and shells. */
function backslash(text: Buffer, p: number, isFinal: boolean, out: Spellings): number {
  const end = text.length;
  if (p + 1 >= end) return isFinal ? out.count : -1;
  const c = text[p + 1] as number;
  const incomplete = (stop: number): number => (stop >= end && !isFinal ? -1 : out.count);
  switch (c) {
    case 0x75: { // \uXXXX (a surrogate pair as two), \u{X…}
      if ((text[p + 2] as number) === 0x7b) return braced(text, p + 3, 3, FAMILY_JSON, isFinal, out);
      const h = hexRun(text, p + 2, 4);
      if (h.digits < 4) return incomplete(p + 2 + h.digits);
      const high = h.value;
      if (high >= 0xd800 && high <= 0xdbff) {
        // A high surrogate reads only with the low one after it: alone it is no character of any secret.
        if (p + 6 >= end) return isFinal ? out.count : -1;
        if ((text[p + 6] as number) !== BACKSLASH) return out.count;
        if (p + 7 >= end) return isFinal ? out.count : -1;
        if ((text[p + 7] as number) !== 0x75) return out.count;
        const low = hexRun(text, p + 8, 4);
        if (low.digits < 4) return incomplete(p + 8 + low.digits);
        if (low.value >= 0xdc00 && low.value <= 0xdfff) out.add(KIND_CODE_POINT, 0x10000 + ((high - 0xd800) << 10) + (low.value - 0xdc00), -1, 12, FAMILY_JSON);
        return out.count;
      }
      if (high < 0xdc00 || high > 0xdfff) out.add(KIND_CODE_POINT, high, -1, 6, FAMILY_JSON);
      return out.count;
    }
    case 0x55: { // \UXXXXXXXX (Python, Go, C)
      const h = hexRun(text, p + 2, 8);
      if (h.digits < 8) return incomplete(p + 2 + h.digits);
      if (isCodePoint(h.value)) out.add(KIND_CODE_POINT, h.value, -1, 10, FAMILY_JSON);
      return out.count;
    }
    case 0x78: { // \xHH: a code point in JavaScript, a byte in Python's bytes, C and Go; \x{…} in Perl
      if ((text[p + 2] as number) === 0x7b) return braced(text, p + 3, 3, FAMILY_JSON, isFinal, out);
      const h = hexRun(text, p + 2, 2);
      if (h.digits < 2) return incomplete(p + 2 + h.digits);
      out.add(KIND_CODE_POINT, h.value, -1, 4, FAMILY_JSON);
      out.add(KIND_BYTE, h.value, -1, 4, FAMILY_JSON);
      return out.count;
    }
    default: {
      // CSS: up to six hex digits and one optional whitespace (Go's html/template writes `\2b ` in a style).
      if (c < 128 && (hexValue[c] as number) >= 0) {
        const h = hexRun(text, p + 1, 6);
        const after = p + 1 + h.digits;
        if (h.digits < 6 && after >= end && !isFinal) return -1;
        const space = text[after] === 0x20 || text[after] === 0x09 || text[after] === 0x0a ? 1 : 0;
        if (isCodePoint(h.value) && h.value > 0) out.add(KIND_CODE_POINT, h.value, -1, after + space - p, FAMILY_OTHER);
      }
      if (c >= 0x30 && c <= 0x37) { // octal, up to three digits (C, Perl, Python's bytes)
        let value = 0;
        let q = p + 1;
        while (q < end && q < p + 4 && (text[q] as number) >= 0x30 && (text[q] as number) <= 0x37) value = value * 8 + (text[q++] as number) - 0x30;
        if (q < p + 4 && q >= end && !isFinal) return -1;
        if (value <= 0xff) out.add(KIND_BYTE, value, -1, q - p, FAMILY_JSON);
        return out.count;
      }
      const letter = ONE_LETTER[c];
      if (letter !== undefined) out.add(KIND_CODE_POINT, letter, -1, 2, FAMILY_JSON);
      // An escaped punctuation character is itself: \/ \" \\ \' in JSON and JavaScript, \+ \= in shells and regexes.
      else if (c >= 0x20 && c < 0x7f && !isAlphanumeric(c)) out.add(KIND_CODE_POINT, c, -1, 2, FAMILY_JSON);
      return out.count;
    }
  }
}

/** `{hex}` after \u or \x: up to six digits. */
function braced(text: Buffer, from: number, before: number, family: number, isFinal: boolean, out: Spellings): number {
  const h = hexRun(text, from, 6);
  const close = from + h.digits;
  if (close >= text.length) return isFinal ? out.count : -1;
  if (h.digits > 0 && (text[close] as number) === 0x7d && isCodePoint(h.value)) out.add(KIND_CODE_POINT, h.value, -1, before + h.digits + 1, family);
  return out.count;
}

/** HTML and XML character references, numeric (any case, leading zeros) and named, read as browsers read them. */
function reference(text: Buffer, p: number, isFinal: boolean, out: Spellings): number {
  const stop = Math.min(text.length, p + MAX_SPELLING);
  entityOut.length = 0;
  entities.startEntity(DecodingMode.Legacy);
  let used = entities.write(text.toString('latin1', p, stop), 1);
  if (used < 0) {
    // Cut off by the bound: not a spelling keyswap reads. Cut off by the end of what has arrived: wait for the rest.
    if (stop - p >= MAX_SPELLING) return out.count;
    if (!isFinal) return -1;
    used = entities.end();
  }
  const first = entityOut[0];
  if (used > 0 && first !== undefined) out.add(KIND_CODE_POINT, first, entityOut[1] ?? -1, used, FAMILY_HTML);
  return out.count;
}

const hexValue = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) hexValue[0x30 + i] = i;
for (let i = 0; i < 6; i++) hexValue[0x41 + i] = hexValue[0x61 + i] = 10 + i;

const run = { digits: 0, value: 0 };

/** Up to `max` hex digits from `from`. The result object is shared: copy its value before the next call. */
function hexRun(text: Buffer, from: number, max: number): { digits: number; value: number } {
  run.digits = 0;
  run.value = 0;
  const end = Math.min(text.length, from + max);
  for (let q = from; q < end; q++) {
    const c = text[q] as number;
    const v = c < 128 ? (hexValue[c] as number) : -1;
    if (v < 0) break;
    run.value = run.value * 16 + v;
    run.digits++;
  }
  return run;
}

function isCodePoint(v: number): boolean {
  return v <= 0x10ffff && (v < 0xd800 || v > 0xdfff);
}

function isAlphanumeric(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
