import type { Config } from '../config/index.js';

/** The hosts keyswap terminates TLS for, so the names its CA must sign for; `any` when no list can say. */
export type DecryptedHosts = { readonly kind: 'any' } | { readonly kind: 'hosts'; readonly hosts: readonly string[] };

/**
 * What the CONNECT router (proxy/connect-route.ts) may decrypt under this config (K7): every binding's host,
 * a wildcard binding as its own pattern (`*.example.com`), on whatever port the binding names. Under
 * `tls_termination: all` an unbound host is decrypted too, unless `unmatched_destination_policy: deny` refuses
 * it first: only then is the list open-ended. Sorted, so the same config always gives the same CA constraints.
 */
export function decryptedHosts(config: Pick<Config, 'secrets' | 'tlsTermination' | 'unmatchedDestinationPolicy'>): DecryptedHosts {
  if (config.tlsTermination === 'all' && config.unmatchedDestinationPolicy !== 'deny') return { kind: 'any' };
  const hosts = new Set<string>();
  for (const s of config.secrets) for (const b of s.bindings) hosts.add(b.host);
  return { kind: 'hosts', hosts: [...hosts].sort() };
}
