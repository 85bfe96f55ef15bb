import type { SecretSpec } from '../config/index.js';
import { namesToFetch, renderSecret, usesClock } from '../inject/index.js';
import type { MintService } from '../mint/index.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { Secret } from '../secrets/index.js';
import type { Target } from './exchange.js';
import { echoForms, Scrubber, scrubNeedles, type ScrubTarget } from './scrubber.js';
import type { Snapshot } from './snapshot.js';

/*
 * What a response to a destination is scrubbed of: every form of every secret bound there (values, template
 * renderings, minted credentials, this request's signatures), as a needle set built once per set of cached values.
 */

/**
 * The needle sets per policy and destination, reused while the cached values are the same objects: building
 * them per request costs more than the rest of the hot path's string work. A WeakMap, so a reloaded policy's
 * sets go with it.
 */
const scrubSets = new WeakMap<CompiledPolicy, Map<string, { readonly values: readonly Secret[]; readonly set: ReturnType<typeof scrubNeedles> }>>();
const echoFormsOf = new WeakMap<Secret, readonly string[]>();

export function scrubberFor(snap: Snapshot, target: Target, specs: readonly SecretSpec[], values: ReadonlyMap<string, Secret>, nowMs: number, here: IssuedHere): Scrubber {
  const mintedOf = mintedValuesOf(snap.mint, here);
  // A totp rendering changes every 30 s: its needles are built per request, never kept.
  if (specs.some(hasClockTemplate)) return new Scrubber(scrubNeedles(scrubTargets(specs, values, nowMs, mintedOf)));
  const key = `${target.scheme}://${target.host}:${target.port}`;
  // The memo holds while the very same value objects are in use: a new fetch or a new minted credential rebuilds it.
  const used = specs.flatMap((s) => [...namesToFetch(s).flatMap((n) => values.get(n) ?? []), ...mintedOf(s.name)]);
  let perPolicy = scrubSets.get(snap.policy);
  if (perPolicy === undefined) scrubSets.set(snap.policy, (perPolicy = new Map()));
  const hit = perPolicy.get(key);
  if (hit !== undefined && hit.values.length === used.length && hit.values.every((v, i) => v === used[i])) return new Scrubber(hit.set);
  const set = scrubNeedles(scrubTargets(specs, values, nowMs, mintedOf));
  if (perPolicy.size > 1000) perPolicy.clear(); // wildcard hosts: keep the memo bounded
  perPolicy.set(key, { values: used, set });
  return new Scrubber(set);
}

export type IssuedHere = readonly { readonly secretName: string; readonly value: Secret }[];

/**
 * A secret's credentials to scrub beyond its values: those the mint service still remembers, and those issued for
 * this request (a credential too short-lived to remember, a signature computed for this request only).
 */
function mintedValuesOf(mint: MintService, here: IssuedHere): (secretName: string) => readonly Secret[] {
  return (name) => {
    const live = mint.live(name);
    const now = here.filter((m) => m.secretName === name && !live.includes(m.value)).map((m) => m.value);
    return now.length === 0 ? live : [...live, ...now];
  };
}

/**
 * Each secret's echo forms: its values', and what each of its templates renders from them (an hmac, a
 * concatenation of parts: a credential in its own right, which no part's forms would find). Rendered from the
 * cached values for every response of a bound destination, not only one that injected it: an upstream may keep a
 * rendering and hand it back to a later request. A totp rendering is looked for in the windows either side of now.
 */
function scrubTargets(specs: readonly SecretSpec[], values: ReadonlyMap<string, Secret>, nowMs: number, mintedOf: (name: string) => readonly Secret[]): ScrubTarget[] {
  return specs.map((s) => ({
    secretName: s.name,
    placeholder: s.placeholder,
    mode: s.responseScrub === 'block' ? 'block' : 'redact',
    forms: [
      ...namesToFetch(s).flatMap((n) => { const v = values.get(n); return v === undefined ? [] : formsOf(v); }),
      ...templateForms(s, values, nowMs),
      ...mintedOf(s.name).flatMap(formsOf),
    ],
  }));
}

function templateForms(s: SecretSpec, values: ReadonlyMap<string, Secret>, nowMs: number): string[] {
  const templates = s.sites.filter((site) => site.render.kind === 'template');
  if (templates.length === 0) return [];
  const plain = new Map(namesToFetch(s).map((n) => [n, values.get(n)?.reveal() ?? '']));
  return templates.flatMap((site) => {
    const times = site.render.kind === 'template' && usesClock(site.render.segments) ? [nowMs - 30_000, nowMs, nowMs + 30_000] : [nowMs];
    // A value a template cannot render (a totp secret that is not base32) can never be injected: nothing to find.
    return times.flatMap((t) => { try { return echoForms(renderSecret(s, site, plain, t)); } catch { return []; } });
  });
}

function hasClockTemplate(s: SecretSpec): boolean {
  return s.sites.some((site) => site.render.kind === 'template' && usesClock(site.render.segments));
}

/** Echo forms per cached secret object: computed once per fetch, not per request. */
function formsOf(secret: Secret): readonly string[] {
  let forms = echoFormsOf.get(secret);
  if (forms === undefined) {
    forms = echoForms(secret.reveal());
    echoFormsOf.set(secret, forms);
  }
  return forms;
}
