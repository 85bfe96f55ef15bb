import { isBoundDestination, leafNameFor } from '../policy/index.js';
import { parseAuthority } from '../wire/index.js';
import type { Snapshot } from './snapshot.js';

export type ConnectRoute =
  | { readonly kind: 'mitm'; readonly host: string; readonly port: number; readonly leafName: string }
  | { readonly kind: 'tunnel'; readonly host: string; readonly port: number }
  | { readonly kind: 'deny'; readonly host: string; readonly port: number }
  | { readonly kind: 'bad_target' };

/**
 * Where a CONNECT goes (K7): bound destinations are decrypted; others are tunnelled untouched, or refused under
 * `unmatched_destination_policy: deny`; `tls_termination: all` decrypts everything.
 */
export function routeConnect(target: string | undefined, snap: Snapshot): ConnectRoute {
  const authority = target === undefined ? null : parseAuthority(target);
  if (authority === null || authority.port === null) return { kind: 'bad_target' };
  const { host, port } = authority;
  const bound = isBoundDestination(snap.policy, host, port, 'https');
  if (bound || snap.policy.tlsTermination === 'all') {
    if (!bound && snap.policy.unmatchedDestinationPolicy === 'deny') return { kind: 'deny', host, port };
    return { kind: 'mitm', host, port, leafName: leafNameFor(snap.policy, host) };
  }
  return snap.policy.unmatchedDestinationPolicy === 'deny' ? { kind: 'deny', host, port } : { kind: 'tunnel', host, port };
}
