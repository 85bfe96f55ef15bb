import type { SecretSpec } from '../config/index.js';
import { PLACEHOLDER_MARKER, type CompiledPolicy } from './compile.js';
import type { RequestFacts, SiteKey } from './verdict.js';

/** One placeholder seen at one place in a request. */
export interface Sighting { readonly secret: SecretSpec; readonly site: SiteKey }

/**
 * Finds every placeholder in the headers (Basic credentials decoded), the path and the query. Bodies are not
 * scanned: only body injectors (a later issue) read them. Cheap rejection first: text without the marker costs
 * one `includes`.
 */
export function scanPlaceholders(facts: RequestFacts, policy: CompiledPolicy): Sighting[] {
  const out: Sighting[] = [];
  for (const [name, value] of facts.headers) {
    if (value.includes(PLACEHOLDER_MARKER)) collect(value, `header:${name}`, policy, out);
    if (name === 'authorization') {
      const basic = decodeBasic(value);
      if (basic !== null && basic.includes(PLACEHOLDER_MARKER)) collect(basic, 'basic', policy, out);
    }
  }
  if (facts.path.includes(PLACEHOLDER_MARKER)) collect(facts.path, 'path', policy, out);
  if (facts.query.includes(PLACEHOLDER_MARKER) || facts.query.includes('%')) {
    for (const [param, value] of queryPairs(facts.query)) {
      if (value.includes(PLACEHOLDER_MARKER)) collect(value, `query:${param}`, policy, out);
    }
  }
  return out;
}

function collect(text: string, site: SiteKey, policy: CompiledPolicy, out: Sighting[]): void {
  for (const secret of policy.secrets) {
    if (text.includes(secret.placeholder)) out.push({ secret, site });
  }
}

/** The decoded `user:pass` of a Basic Authorization value, or null when the value is not Basic. */
export function decodeBasic(value: string): string | null {
  if (value.length < 6 || value.slice(0, 6).toLowerCase() !== 'basic ') return null;
  return Buffer.from(value.slice(6).trim(), 'base64').toString('latin1');
}

/** `a=1&b=x%20y` → [['a','1'], ['b','x y']]; undecodable pairs are kept raw so nothing hides behind bad escapes. */
export function queryPairs(query: string): [string, string][] {
  if (query === '') return [];
  return query.split('&').map((part) => {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    return [safeDecode(rawName), safeDecode(rawValue)];
  });
}

function safeDecode(text: string): string {
  const plus = text.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    // A malformed escape is not an error here: the raw text is what we scan, so no placeholder hides behind it.
    return plus;
  }
}
