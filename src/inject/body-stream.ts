import { Transform, type TransformCallback } from 'node:stream';

export interface BodyNeedle {
  readonly secretName: string;
  readonly placeholder: string;
}

/**
 * Replaces placeholders in a request body as it streams, in constant memory: it holds back only a tail that
 * could still begin a placeholder (at most the longest placeholder minus one byte), so a placeholder split across
 * chunks is still found. `resolve` runs once per secret, at its first occurrence, before any byte after it is
 * released: that is where the caller fetches the secret and makes its audit record durable (K5). Bodies without
 * a placeholder pass byte-exact. Works on bytes (latin1 strings, one char per byte), never on decoded text.
 */
export function createBodyInjector(needles: readonly BodyNeedle[], resolve: (secretName: string) => Promise<string>): Transform {
  const marks = needles.map((n) => ({ ...n, find: Buffer.from(n.placeholder, 'utf8').toString('latin1') }));
  const maxLen = marks.reduce((m, n) => Math.max(m, n.find.length), 0);
  const resolved = new Map<string, string>();
  let carry = '';

  const holdback = (s: string): number => {
    for (let k = Math.min(maxLen - 1, s.length); k > 0; k--) {
      const tail = s.slice(s.length - k);
      if (marks.some((n) => n.find.startsWith(tail))) return k;
    }
    return 0;
  };
  const substitute = async (text: string): Promise<string> => {
    let out = text;
    for (const n of marks) {
      if (!out.includes(n.find)) continue;
      let value = resolved.get(n.secretName);
      if (value === undefined) {
        value = Buffer.from(await resolve(n.secretName), 'utf8').toString('latin1');
        resolved.set(n.secretName, value);
      }
      out = out.split(n.find).join(value);
    }
    return out;
  };

  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      substitute(carry + chunk.toString('latin1')).then(
        (text) => {
          const hold = holdback(text);
          carry = text.slice(text.length - hold);
          const ready = text.slice(0, text.length - hold);
          done(null, ready.length > 0 ? Buffer.from(ready, 'latin1') : undefined);
        },
        (err: unknown) => done(err as Error),
      );
    },
    flush(done: TransformCallback) {
      substitute(carry).then(
        (text) => done(null, text.length > 0 ? Buffer.from(text, 'latin1') : undefined),
        (err: unknown) => done(err as Error),
      );
    },
  });
}
