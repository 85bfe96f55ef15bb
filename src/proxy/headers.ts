/**
 * Hop-by-hop headers belong to one connection and are never forwarded (RFC 9110 §7.6.1), in either direction.
 * `proxy-authorization` is the agent's credential for keyswap itself; `expect` is answered by keyswap's own
 * server, so the upstream must not wait for a second `100 Continue`.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect', 'http2-settings',
]);

/** rawHeaders (flat name/value list) → pairs with lower-case names, hop-by-hop headers removed. */
export function endToEndPairs(raw: readonly string[]): [string, string][] {
  const listed = connectionListed(raw);
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (HOP_BY_HOP.has(name) || (listed !== null && listed.has(name))) continue;
    out.push([name, raw[i + 1] ?? '']);
  }
  return out;
}

/** The same, flattened back to the `[name, value, name, value…]` form http.request and writeHead accept. */
export function flatten(pairs: readonly (readonly [string, string])[]): string[] {
  const out: string[] = [];
  for (const [n, v] of pairs) out.push(n, v);
  return out;
}

/** Names that a `Connection:` header declares hop-by-hop for this message. */
function connectionListed(raw: readonly string[]): Set<string> | null {
  let listed: Set<string> | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] ?? '').toLowerCase() !== 'connection') continue;
    listed ??= new Set();
    for (const token of (raw[i + 1] ?? '').split(',')) listed.add(token.trim().toLowerCase());
  }
  return listed;
}
