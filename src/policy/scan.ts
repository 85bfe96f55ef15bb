import type { SecretSpec } from '../config/index.js';
import { PLACEHOLDER_MARKER, type CompiledPolicy } from './compile.js';
import type { RequestFacts, SiteKey } from './verdict.js';
import { decodeBasic, queryPairs } from '../wire/index.js';

/** One placeholder seen at one place in a request. */
export interface Sighting { readonly secret: SecretSpec; readonly site: SiteKey }

/**
 * Finds every placeholder in the headers (Basic credentials decoded), the path and the query. Bodies are read
 * as they stream (proxy/body-watch), since they may be any size. Cheap rejection first: text without the marker
 * costs one `includes`.
 */
export function scanPlaceholders(facts: RequestFacts, policy: CompiledPolicy): Sighting[] {
  const out: Sighting[] = [];
  for (const [name, value] of facts.headers) {
    if (value.includes(PLACEHOLDER_MARKER)) collect(value, `header:${name}`, policy, out);
    if (name === 'authorization') {
      const basic = decodeBasic(value);
      if (basic !== null && basic.decoded.includes(PLACEHOLDER_MARKER)) collect(basic.decoded, 'basic', policy, out);
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
