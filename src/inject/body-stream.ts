import type { Transform } from 'node:stream';
import { NeedleSet, replacingStream } from '../wire/index.js';

/** A placeholder to find in a request body, and the rendered secret that replaces it (null: only watched for). */
export interface BodySubstitution {
  readonly secretName: string;
  readonly placeholder: string;
  readonly value: string | null;
}

/**
 * Replaces placeholders in a request body as it streams, in constant memory (wire/replacer holds back only a
 * tail that could begin a placeholder). `firstSeen` runs once per secret, at its first occurrence, before any
 * byte of that chunk is released: that is where the caller makes the decision durable (K5) or records a
 * honeytoken. Bodies without a placeholder pass byte-exact; a substituted value is never rescanned.
 */
export function createBodyRewriter(subs: readonly BodySubstitution[], firstSeen: (secretNames: readonly string[]) => Promise<void>): Transform {
  const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
  const set = new NeedleSet(subs.map((s) => ({ find: latin1(s.placeholder), replace: s.value === null ? null : latin1(s.value), tag: s.secretName })));
  const seen = new Set<string>();
  return replacingStream(set, {
    beforeRelease: async (found) => {
      const fresh = [...new Set(found.map((n) => n.tag))].filter((name) => !seen.has(name));
      if (fresh.length === 0) return;
      for (const name of fresh) seen.add(name);
      await firstSeen(fresh);
    },
  });
}
