import type { InjectSpec, SecretSpec } from '../config/index.js';
import { evaluateTemplate } from './template-eval.js';

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
