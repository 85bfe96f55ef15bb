import { isBoundDestination, leafNameFor, type CompiledPolicy } from '../policy/index.js';
import { parseAuthority } from '../wire/index.js';

export type ConnectRoute =
  | { readonly kind: 'mitm'; readonly host: string; readonly port: number; readonly leafName: string }
  | { readonly kind: 'tunnel'; readonly host: string; readonly port: number }
  | { readonly kind: 'deny'; readonly host: string; readonly port: number }
  | { readonly kind: 'bad_target' };

/**
 * Where a CONNECT goes (K7): bound destinations are decrypted; others are tunnelled untouched, or refused under
 * `unmatched_destination_policy: deny`; `tls_termination: all` decrypts everything. The one answer: the proxy
 * and `keyswap explain` both ask here.
 */
export function routeConnect(target: string | undefined, policy: CompiledPolicy): ConnectRoute {
  const authority = target === undefined ? null : parseAuthority(target);
  if (authority === null || authority.port === null) return { kind: 'bad_target' };
  const { host, port } = authority;
  const bound = isBoundDestination(policy, host, port, 'https');
  if (bound || policy.tlsTermination === 'all') {
    if (!bound && policy.unmatchedDestinationPolicy === 'deny') return { kind: 'deny', host, port };
    return { kind: 'mitm', host, port, leafName: leafNameFor(policy, host) };
  }
  return policy.unmatchedDestinationPolicy === 'deny' ? { kind: 'deny', host, port } : { kind: 'tunnel', host, port };
}
