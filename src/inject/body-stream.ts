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
 * tail that could begin a placeholder). `beforeWriting` runs for every chunk that holds placeholders, before any
 * byte of it is released, with the secrets it holds and those seen for the first time: that is where the caller
 * asks whether the configuration in force still allows them (a body can outlive its client) and makes a first use
 * durable (K5) or records a honeytoken. It may reject: the stream fails and nothing of that chunk leaves. Bodies
 * without a placeholder pass byte-exact; a substituted value is never rescanned.
 */
export function createBodyRewriter(subs: readonly BodySubstitution[], beforeWriting: (secretNames: readonly string[], firstSeen: readonly string[]) => Promise<void>): Transform {
  const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
  const set = new NeedleSet(subs.map((s) => ({ find: latin1(s.placeholder), replace: s.value === null ? null : latin1(s.value), tag: s.secretName })));
  const seen = new Set<string>();
  return replacingStream(set, {
    beforeRelease: async (found) => {
      const names = [...new Set(found.map((n) => n.tag))];
      const fresh = names.filter((name) => !seen.has(name));
      await beforeWriting(names, fresh);
      for (const name of fresh) seen.add(name);
    },
  });
}
