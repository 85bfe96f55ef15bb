import type { EchoMatcher } from './echo-matcher.js';
import { compileTargets, Scrubber, type EchoTag, type ScrubTarget } from './scrubber.js';

/**
 * Compiled scrubbers per configuration and destination, reused while the values behind them are the very same
 * objects (a new fetch, a new minted credential, a new token request rebuilds): compiling per request costs more than
 * the rest of the hot path. Keyed weakly on the compiled policy, so a reloaded configuration's go with it.
 */
export class ScrubberCache {
  readonly #byOwner = new WeakMap<object, Map<string, { readonly values: readonly object[]; readonly matcher: EchoMatcher<EchoTag> }>>();

  /** The scrubber for `key` under `owner`, compiled from `targets()` only when `values` changed. */
  scrubber(owner: object, key: string, values: readonly object[], targets: () => readonly ScrubTarget[]): Scrubber {
    let perOwner = this.#byOwner.get(owner);
    if (perOwner === undefined) this.#byOwner.set(owner, (perOwner = new Map()));
    const hit = perOwner.get(key);
    if (hit !== undefined && hit.values.length === values.length && hit.values.every((v, i) => v === values[i])) return new Scrubber(hit.matcher);
    const matcher = compileTargets(targets());
    if (perOwner.size > 1000) perOwner.clear(); // wildcard hosts: keep the memo bounded
    perOwner.set(key, { values, matcher });
    return new Scrubber(matcher);
  }
}
