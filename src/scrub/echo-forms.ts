/** What an echo of one value can look like once its characters are decoded: the forms the matcher searches for. */
export interface ValueForm {
  readonly bytes: Buffer;
  /** Letters match in either case (hex). */
  readonly foldCase: boolean;
}

/** Forms shorter than this are not searched for: replacing every "abc" in a body would corrupt it and protect nothing. */
export const MIN_FORM_BYTES = 8;

/**
 * The forms of a value: its UTF-8 bytes (each character then spelled any way spellings.ts reads), the hex of those
 * bytes in either case, and base64, standard and URL-safe, at all three byte alignments. An echo inside a larger
 * base64 blob — Basic `user:secret` with a user of any length, a JSON document base64'd whole — encodes the
 * value starting at byte offset 0, 1 or 2 of a 3-byte group; for each, the characters that depend only on the
 * value's bytes are the same wherever it sits, so they are what is searched for. Base64 and hex are ASCII, so an
 * encoder that escapes one of their characters (Gson's `\u003d` for `=`) is read like any other echo.
 */
export function valueForms(value: string): ValueForm[] {
  const utf8 = Buffer.from(value, 'utf8');
  if (utf8.length < MIN_FORM_BYTES) return [];
  // A header carries a value's characters as latin1 bytes (é as 0xE9, not UTF-8's C3 A9): an upstream that
  // reflects the bytes it received echoes those, raw or encoded.
  const latin1 = /[\u0080-\u00ff]/.test(value) && !/[^\u0000-\u00ff]/.test(value) ? [Buffer.from(value, 'latin1')] : [];
  const forms = [utf8, ...latin1].flatMap(bytesForms);
  const seen = new Set<string>();
  return forms.filter((f) => f.bytes.length >= MIN_FORM_BYTES && !seen.has(f.bytes.toString('latin1')) && seen.add(f.bytes.toString('latin1')));
}

/** The bytes themselves, base64 at every alignment (standard and URL-safe), and hex. */
function bytesForms(bytes: Buffer): ValueForm[] {
  const texts = [bytes.toString('base64')];
  for (let k = 0; k < 3; k++) {
    const shifted = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    // Skip the group holding the k filler bytes; stop before the group the next bytes would complete.
    const core = shifted.slice(k === 0 ? 0 : 4, Math.floor((k + bytes.length) / 3) * 4);
    texts.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return [
    { bytes, foldCase: false },
    ...texts.map((t) => ({ bytes: Buffer.from(t, 'latin1'), foldCase: false })),
    { bytes: Buffer.from(bytes.toString('hex'), 'latin1'), foldCase: true },
  ];
}
