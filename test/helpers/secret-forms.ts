import { decodeHTML } from 'entities';
/**
 * The forms in which an upstream can echo a secret, and the needles that find each form in bytes an agent
 * received. Independent of keyswap's scrubber (src/scrub/), so a bug there cannot hide here.
 */

/**
 * Whole-value forms, and spelled ones (issue #32): every character \uXXXX (upper-case hex, as .NET writes), every
 * character an HTML hex or decimal reference, each character in another family in turn, and hex of the bytes.
 */
export const ECHO_FORMS = ['raw', 'b64-0', 'b64-1', 'b64-2', 'b64url-0', 'b64url-1', 'b64url-2', 'pct', 'json', 'json-u', 'html-hex', 'html-dec', 'mixed', 'hex'] as const;
export type EchoForm = (typeof ECHO_FORMS)[number];

const FILLER = Buffer.from('\x01\x02', 'latin1');

function prefixed(value: string, k: number): Buffer {
  return Buffer.concat([FILLER.subarray(0, k), Buffer.from(value, 'utf8')]);
}

/** What an upstream writes when it echoes `value` in `form` (b64-k: base64 of k filler bytes + the value). */
export function renderEcho(value: string, form: EchoForm): string {
  switch (form) {
    case 'raw': return value;
    case 'pct': return encodeURIComponent(value);
    case 'json': return JSON.stringify(value).slice(1, -1);
    case 'b64-0': case 'b64-1': case 'b64-2': return prefixed(value, Number(form.slice(-1))).toString('base64');
    case 'b64url-0': case 'b64url-1': case 'b64url-2': return prefixed(value, Number(form.slice(-1))).toString('base64url');
    case 'json-u': return [...value].map((c) => units(c).map((u) => `\\u${u.toString(16).toUpperCase().padStart(4, '0')}`).join('')).join('');
    case 'html-hex': return [...value].map((c) => `&#x${(c.codePointAt(0) as number).toString(16)};`).join('');
    case 'html-dec': return [...value].map((c) => `&#${c.codePointAt(0) as number};`).join('');
    case 'mixed': return [...value].map((c, i) => [c, `&#${c.codePointAt(0) as number};`, [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''), units(c).map((u) => `\\u${u.toString(16).padStart(4, '0')}`).join('')][i % 4] as string).join('');
    case 'hex': return Buffer.from(value, 'utf8').toString('hex');
  }
}

/** A character's UTF-16 code units (two for one outside the BMP: a JSON surrogate pair). */
function units(c: string): number[] {
  return Array.from({ length: c.length }, (_, i) => c.charCodeAt(i));
}

/**
 * The base64 characters of base64(k bytes + value) that depend only on the value's bits: a character covers
 * bits [6i, 6i+6), and is kept when that range lies inside the value's bits [8k, 8(k+n)).
 */
function valueOnlyChars(encoded: string, k: number, n: number): string {
  const start = Math.ceil((8 * k) / 6);
  const end = Math.floor((8 * (k + n)) / 6);
  return encoded.slice(start, end);
}

export interface Needle { readonly form: EchoForm; readonly text: string }

/** Latin1 needles (one char per byte) that find `value` in every form of ECHO_FORMS, at any alignment. */
export function needlesOf(value: string): Needle[] {
  const n = Buffer.byteLength(value, 'utf8');
  const out: Needle[] = [];
  for (const form of ECHO_FORMS) {
    let text = renderEcho(value, form);
    if (form.startsWith('b64')) text = valueOnlyChars(text, Number(form.slice(-1)), n);
    // A spelled echo is found once decoded (findSecretForms decodes every haystack once).
    if (['json-u', 'html-hex', 'html-dec', 'mixed'].includes(form)) text = value;
    out.push({ form, text: Buffer.from(text, 'utf8').toString('latin1') });
  }
  return out;
}

export interface Found { readonly secret: string; readonly form: EchoForm }

/** Every (secret, form) whose needle occurs in `haystack` (latin1), as it is or with every escape decoded once. */
export function findSecretForms(haystack: string, needles: ReadonlyMap<string, readonly Needle[]>): Found[] {
  const found: Found[] = [];
  const decoded = decodeOnce(haystack);
  for (const [secret, list] of needles) {
    for (const nd of list) if (haystack.includes(nd.text) || decoded.includes(nd.text) || (nd.form === 'hex' && (haystack.includes(nd.text.toUpperCase()) || decoded.includes(nd.text.toUpperCase())))) found.push({ secret, form: nd.form });
  }
  return found;
}

const HEX = /^[0-9a-fA-F]+$/;

/**
 * `text` (latin1 bytes) with every escape decoded once, greedily left to right: JSON/JavaScript (\uXXXX with
 * surrogate pairs, \xHH, one-letter and punctuation escapes), HTML references (numeric, any case, leading zeros;
 * named, through the `entities` library) and percent-encoding. Written apart from src/scrub, as the tests' oracle.
 */
export function decodeOnce(text: string): string {
  const out: number[] = [];
  const utf8 = (cp: number): void => { for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(b); };
  const one: Record<string, number> = { n: 10, r: 13, t: 9, b: 8, f: 12, v: 11 };
  for (let i = 0; i < text.length;) {
    const c = text[i] as string;
    const rest = text.slice(i, i + 40);
    let m: RegExpExecArray | null;
    if (c === '\\' && (m = /^\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(rest))) {
      utf8(0x10000 + ((parseInt(m[1] as string, 16) - 0xd800) << 10) + (parseInt(m[2] as string, 16) - 0xdc00));
      i += 12;
    } else if (c === '\\' && (m = /^\\u([0-9a-fA-F]{4})/.exec(rest))) {
      utf8(parseInt(m[1] as string, 16));
      i += 6;
    } else if (c === '\\' && (m = /^\\x([0-9a-fA-F]{2})/.exec(rest))) {
      utf8(parseInt(m[1] as string, 16));
      i += 4;
    } else if (c === '\\' && i + 1 < text.length && (one[text[i + 1] as string] !== undefined || /[!-/:-@[-`{-~]/.test(text[i + 1] as string))) {
      out.push(one[text[i + 1] as string] ?? (text.charCodeAt(i + 1)));
      i += 2;
    } else if (c === '&' && (m = /^&#([xX])([0-9a-fA-F]{1,30});?|^&#([0-9]{1,30});?/.exec(rest))) {
      utf8(m[2] !== undefined ? parseInt(m[2], 16) : Number(m[3]));
      i += m[0].length;
    } else if (c === '&' && (m = /^&[A-Za-z][A-Za-z0-9]{1,31};/.exec(rest)) && decodeHTML(m[0]) !== m[0]) {
      for (const b of Buffer.from(decodeHTML(m[0]), 'utf8')) out.push(b);
      i += m[0].length;
    } else if (c === '%' && HEX.test(text.slice(i + 1, i + 3)) && i + 2 < text.length) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      out.push(text.charCodeAt(i));
      i++;
    }
  }
  return Buffer.from(out).toString('latin1');
}

/**
 * The forms of `value` found in `text` (latin1): as received or once every escape is decoded — raw, base64 at
 * every alignment (standard and URL-safe), percent, JSON, and hex in either case. Empty: no leak.
 */
export function leaksIn(text: string, value: string): string[] {
  return findSecretForms(text, new Map([[value, needlesOf(value).filter((n) => n.text.length >= 8)]])).map((f) => f.form);
}
