import { minterInputs, signerInputs } from './compile-minter.js';
import type { SecretSpec } from './types.js';

/**
 * The backend names a secret's renderings need: its own name for a format, the names a template composes, the
 * inputs a minted credential is made from. The config routes each of them to the secret's backend.
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
