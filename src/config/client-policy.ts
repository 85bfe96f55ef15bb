import type { ClientSpec } from './types.js';

/**
 * Who may use keyswap, as every part of it must agree (the proxy, `client list`, `doctor`, `explain`): without a
 * `clients:` section any local process; with an empty one nobody (every request gets 407); otherwise the named
 * clients, each with its token in the proxy URL.
 */
export type ClientPolicy =
  | { readonly kind: 'open' }
  | { readonly kind: 'closed' }
  | { readonly kind: 'named'; readonly names: readonly string[] };

/** Open: no `clients:` section. The proxy asks this per request; it allocates nothing, unlike clientPolicy(). */
export function isOpenToAnyClient(clients: ReadonlyMap<string, ClientSpec> | null): clients is null {
  return clients === null;
}

export function clientPolicy(clients: ReadonlyMap<string, ClientSpec> | null): ClientPolicy {
  if (isOpenToAnyClient(clients)) return { kind: 'open' };
  if (clients.size === 0) return { kind: 'closed' };
  return { kind: 'named', names: [...clients.keys()] };
}

/** One sentence for a person, the same wherever keyswap says who may use it. */
export function describeClientPolicy(p: ClientPolicy): string {
  switch (p.kind) {
    case 'open': return 'no clients: section: any local process that can reach keyswap may use it';
    case 'closed': return 'clients: is empty: keyswap refuses every request (407) until a client is added (keyswap client add NAME --secrets A,B), or the clients: key is removed';
    case 'named': return `only ${p.names.length === 1 ? 'client' : 'clients'} ${p.names.join(', ')}, each with NAME:TOKEN in its proxy URL (HTTPS_PROXY=http://NAME:TOKEN@host:port); a request without one gets 407`;
  }
}

/** Whom a use counts against (quotas, rate limits): a session is its parent client; anyone else, itself. */
export function accountOf(client: ClientSpec | null): string | null {
  return client === null ? null : client.session?.parent ?? client.name;
}
