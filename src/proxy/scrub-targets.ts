import { namesToFetch, type SecretSpec } from '../config/index.js';
import { renderSecret, usesClock } from '../inject/index.js';
import { compileTargets, Scrubber, type ScrubTarget } from '../scrub/index.js';
import type { Secret } from '../secrets/index.js';
import type { Target } from './exchange.js';
import type { Snapshot } from './snapshot.js';

/*
 * What a response from a destination is scrubbed of: everything keyswap may have written there on an agent's
 * behalf — every bound secret's values and what each of its sites renders from them (an upstream may keep one and
 * hand it back to a later request), the credentials minted for it, this request's signatures, and whatever keyswap's
 * own token requests carried to that destination (mint/sent-ledger.ts). scrub/ compiles and matches; this file
 * only gathers the values.
 */

export type IssuedHere = readonly { readonly secretName: string; readonly value: Secret }[];

/** Whether responses from `target` are scrubbed: some secret is bound there, or keyswap's token requests went there. */
export function scrubsAt(snap: Snapshot, target: Target, specs: readonly SecretSpec[]): boolean {
  return specs.length > 0 || snap.mint.sentTo(destinationKey(target)).length > 0;
}

/** The scrubber for a response from `target`, or null when nothing was or could have been written there. */
export function scrubberFor(snap: Snapshot, target: Target, specs: readonly SecretSpec[], values: ReadonlyMap<string, Secret>, nowMs: number, here: IssuedHere): Scrubber | null {
  const key = destinationKey(target);
  const sent = snap.mint.sentTo(key);
  if (specs.length === 0 && sent.length === 0) return null;
  const mintedOf = mintedValuesOf(snap, here);
  const build = (): ScrubTarget[] => [...boundTargets(specs, values, nowMs, mintedOf), ...sentTargets(snap, sent)];
  // A totp rendering changes every 30 s: its forms are built per request, never kept.
  if (specs.some(hasClockTemplate)) return new Scrubber(compileTargets(build()));
  // The memo holds while the very same value objects are in use: a new fetch, mint or token request rebuilds it.
  const used = [...specs.flatMap((s) => [...namesToFetch(s).flatMap((n) => values.get(n) ?? []), ...mintedOf(s.name)]), ...sent.map((s) => s.value)];
  return snap.scrubbers.scrubber(snap.policy, key, used, build);
}

/**
 * A secret's credentials to scrub beyond its values: those the mint service still remembers, and those issued for
 * this request (a credential too short-lived to remember, a signature computed for this request only).
 */
function mintedValuesOf(snap: Snapshot, here: IssuedHere): (secretName: string) => readonly Secret[] {
  return (name) => {
    const live = snap.mint.live(name);
    const now = here.filter((m) => m.secretName === name && !live.includes(m.value)).map((m) => m.value);
    return now.length === 0 ? live : [...live, ...now];
  };
}

/**
 * Each bound secret's values, what each of its templates renders from them (an hmac, a concatenation of parts: a
 * credential in its own right, which no part would find), and its minted credentials. Rendered from the cached
 * values for every response of a bound destination, not only one that injected it. A totp rendering is looked for
 * in the windows either side of now.
 */
function boundTargets(specs: readonly SecretSpec[], values: ReadonlyMap<string, Secret>, nowMs: number, mintedOf: (name: string) => readonly Secret[]): ScrubTarget[] {
  return specs.map((s) => ({
    secretName: s.name,
    placeholder: s.placeholder,
    mode: s.responseScrub === 'block' ? 'block' : 'redact',
    values: [
      ...namesToFetch(s).flatMap((n) => { const v = values.get(n); return v === undefined ? [] : [v.reveal()]; }),
      ...templateRenderings(s, values, nowMs),
      ...mintedOf(s.name).map((v) => v.reveal()),
    ],
  }));
}

/** What keyswap's token requests carried here, under the placeholder of the secret they minted for. */
function sentTargets(snap: Snapshot, sent: ReturnType<Snapshot['mint']['sentTo']>): ScrubTarget[] {
  return sent.map((s) => {
    const spec = snap.policy.secrets.find((p) => p.name === s.secretName);
    return { secretName: s.secretName, placeholder: spec?.placeholder ?? REDACTED, mode: spec?.responseScrub === 'block' ? 'block' : 'redact', values: [s.value.reveal()] };
  });
}

/** A destination as mint/'s ledger names it. */
function destinationKey(target: Target): string {
  return `${target.scheme}://${target.host}:${target.port}`;
}

/** For a credential whose secret a reload removed: it is still scrubbed, under a marker of its own. */
const REDACTED = 'keyswap-PLACEHOLDER-redacted';

function templateRenderings(s: SecretSpec, values: ReadonlyMap<string, Secret>, nowMs: number): string[] {
  const templates = s.sites.filter((site) => site.render.kind === 'template');
  if (templates.length === 0) return [];
  const plain = new Map(namesToFetch(s).map((n) => [n, values.get(n)?.reveal() ?? '']));
  return templates.flatMap((site) => {
    const times = site.render.kind === 'template' && usesClock(site.render.segments) ? [nowMs - 30_000, nowMs, nowMs + 30_000] : [nowMs];
    // A value a template cannot render (a totp secret that is not base32) can never be injected: nothing to find.
    return times.flatMap((t) => { try { return [renderSecret(s, site, plain, t)]; } catch { return []; } });
  });
}

function hasClockTemplate(s: SecretSpec): boolean {
  return s.sites.some((site) => site.render.kind === 'template' && usesClock(site.render.segments));
}
