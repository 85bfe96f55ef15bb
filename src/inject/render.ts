import type { InjectSpec, SecretSpec } from '../config/index.js';
import { evaluateTemplate } from './template-eval.js';

/**
 * The backend names a secret's rendering needs: its own name, or the names its templates compose (a secret with
 * `compose:` renders every site from a template; config/compile-secret refuses a format beside it).
 */
export function namesToFetch(secret: SecretSpec): readonly string[] {
  const r = secret.sites[0].render;
  return r.kind === 'template' ? r.compose : [secret.name];
}

/**
 * Renders the text to place at the site. `{NAME}` and `{secret}` are literal replacements, never a format
 * language: a secret value containing braces stays as it is and is not expanded again.
 */
export function renderSecret(secret: SecretSpec, site: InjectSpec, values: ReadonlyMap<string, string>, nowMs: number): string {
  const r = site.render;
  if (r.kind === 'template') return evaluateTemplate(r.segments, values, nowMs);
  const value = values.get(secret.name) ?? '';
  // One pass over the format: split on the tokens and join with the value, so the value is never rescanned.
  return r.format.split(`{${secret.name}}`).map((part) => part.split('{secret}').join(value)).join(value);
}
