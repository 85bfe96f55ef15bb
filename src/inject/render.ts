import { minterInputs, signerInputs, type InjectSpec, type SecretSpec } from '../config/index.js';
import { evaluateTemplate } from './template-eval.js';

/**
 * The backend names a secret's renderings need: its own name for a format, the names a template composes, the
 * inputs a minted credential is made from.
 */
export function namesToFetch(secret: SecretSpec): readonly string[] {
  let names = fetchedNames.get(secret);
  if (names === undefined) {
    const all = secret.sites.flatMap(({ render: r }) => (r.kind === 'template' ? r.compose : r.kind === 'minted' ? minterInputs(r.minter) : r.kind === 'signed' ? signerInputs(r.signer) : [secret.name]));
    names = Object.freeze(all.length === 1 ? all : [...new Set(all)]);
    fetchedNames.set(secret, names);
  }
  return names;
}

/** A spec never changes once loaded (a reload builds new ones), and every request asks this of each secret it carries. */
const fetchedNames = new WeakMap<SecretSpec, readonly string[]>();

/**
 * Renders the text to place at the site. `{NAME}` and `{secret}` are literal replacements, never a format
 * language: a secret value containing braces stays as it is and is not expanded again.
 */
export function renderSecret(secret: SecretSpec, site: InjectSpec, values: ReadonlyMap<string, string>, nowMs: number, minted: string | null = null): string {
  const r = site.render;
  if (r.kind === 'template') return evaluateTemplate(r.segments, values, nowMs);
  if (r.kind === 'signed') throw new Error(`secret ${secret.name}: a signed site is written by its signer, not rendered`);
  if (r.kind === 'minted') {
    if (minted === null) throw new Error(`secret ${secret.name}: a minted site rendered without its credential`);
    return r.format.split(r.slot).join(minted);
  }
  const value = values.get(secret.name) ?? '';
  // One pass over the format: split on the tokens and join with the value, so the value is never rescanned.
  return r.format.split(`{${secret.name}}`).map((part) => part.split('{secret}').join(value)).join(value);
}
