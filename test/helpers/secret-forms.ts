/**
 * Every form keyswap claims to scrub a secret in, computed here independently of src/ so a test's oracle never
 * shares a bug with the code it checks: raw, percent-encoded, JSON-escaped, and base64 (standard and URL-safe)
 * at each of the three byte alignments a secret can have inside a larger base64 blob.
 */
export function secretForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]);
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k, 0x20), bytes]).toString('base64');
    const stable = b64.slice(k === 0 ? 0 : 4, Math.floor((k + bytes.length) / 3) * 4);
    forms.add(stable);
    forms.add(stable.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...forms].filter((f) => f.length >= 8);
}
