/**
 * The forms in which an upstream can echo a secret, and the needles that find each form in bytes an agent
 * received. Independent of keyswap's scrubber (src/proxy/scrubber.ts), so a bug there cannot hide here.
 */

export const ECHO_FORMS = ['raw', 'b64-0', 'b64-1', 'b64-2', 'b64url-0', 'b64url-1', 'b64url-2', 'pct', 'json'] as const;
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
  }
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
    out.push({ form, text: Buffer.from(text, 'utf8').toString('latin1') });
  }
  return out;
}

export interface Found { readonly secret: string; readonly form: EchoForm }

/** Every (secret, form) whose needle occurs in `haystack` (latin1). */
export function findSecretForms(haystack: string, needles: ReadonlyMap<string, readonly Needle[]>): Found[] {
  const found: Found[] = [];
  for (const [secret, list] of needles) {
    for (const nd of list) if (haystack.includes(nd.text)) found.push({ secret, form: nd.form });
  }
  return found;
}
