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
  readonly kind = new Uint8Array(8); // KIND_CODE_POINT | KIND_BYTE
  readonly first = new Int32Array(8); // the code point or byte
  readonly second = new Int32Array(8); // a second code point (some named entities), or -1
  readonly length = new Int32Array(8); // bytes of text the spelling takes
  readonly family = new Uint8Array(8);

  add(kind: number, first: number, second: number, length: number, family: number): void {
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
 */
export function readSpellings(text: Buffer, p: number, isFinal: boolean, plusIsSpace: boolean, out: Spellings): number {
  out.count = 0;
  const b = text[p] as number;
  out.add(KIND_BYTE, b, -1, 1, 0);
  const end = text.length;
  switch (b) {
    case PLUS:
      if (plusIsSpace) out.add(KIND_BYTE, 0x20, -1, 1, FAMILY_PERCENT);
      return out.count;
    case PERCENT: {
      const h = hexRun(text, p + 1, 2);
      if (h.digits === 2) out.add(KIND_BYTE, h.value, -1, 3, FAMILY_PERCENT);
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
