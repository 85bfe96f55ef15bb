/**
 * Header questions answered once for every layer: which headers are hop-by-hop, which may appear only once, and
 * how a request's body is framed. Policy decides on the same pairs that go upstream, so nothing here may be
 * re-derived elsewhere from `req.headers` (which keeps the first of two Hosts and joins two Authorizations).
 */

/**
 * Hop-by-hop headers belong to one connection and are never forwarded (RFC 9110 §7.6.1), in either direction.
 * `proxy-authorization` is the agent's credential for keyswap itself; `expect` is answered by keyswap's own
 * server, so the upstream must not wait for a second `100 Continue`. Framing (`content-length`,
 * `transfer-encoding`) is set by keyswap from `requestFraming()`, never copied.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect', 'http2-settings',
]);

export type HeaderPair = [name: string, value: string];

/** rawHeaders (flat name/value list) → pairs with lower-case names, hop-by-hop headers removed. */
export function endToEndPairs(raw: readonly string[]): HeaderPair[] {
  const listed = connectionListed(raw);
  const out: HeaderPair[] = [];
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

/**
 * The first header of `singletons` that appears more than once, or null. Two `Host`s (or two credentials at one
 * site) are read one way by keyswap and possibly another by the upstream or a front before it, so such a request
 * is refused rather than forwarded with a guess.
 */
export function firstDuplicate(pairs: readonly (readonly [string, string])[], singletons: ReadonlySet<string>): string | null {
  const seen = new Set<string>();
  for (const [name] of pairs) {
    if (!singletons.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return null;
}

/** How a request's body is delimited on the wire; `ambiguous` is refused, never forwarded. */
export type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly bytes: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'ambiguous' };

/**
 * The framing the agent's request had, from its raw headers. Only `Transfer-Encoding: chunked` alone is a
 * transfer coding keyswap can forward faithfully: `gzip, chunked` would reach the upstream as a body it cannot
 * tell is compressed. Node's parser already rejects CL+TE and differing lengths; this is the second, explicit
 * reading that the upstream request is built from, so the two can never disagree silently.
 */
export function requestFraming(raw: readonly string[]): Framing {
  let length: string | null = null;
  let te: string | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (name === 'content-length') {
      if (length !== null) return { kind: 'ambiguous' };
      length = (raw[i + 1] ?? '').trim();
    } else if (name === 'transfer-encoding') {
      if (te !== null) return { kind: 'ambiguous' };
      te = (raw[i + 1] ?? '').trim().toLowerCase();
    }
  }
  if (te !== null) return length === null && te === 'chunked' ? { kind: 'chunked' } : { kind: 'ambiguous' };
  if (length === null) return { kind: 'none' };
  if (!/^[0-9]{1,15}$/.test(length)) return { kind: 'ambiguous' };
  const bytes = Number(length);
  return bytes === 0 ? { kind: 'none' } : { kind: 'length', bytes };
}

/** The media type of a Content-Type value (lower-case, no parameters), or null. */
export function mediaType(header: string | undefined): string | null {
  return header === undefined ? null : (header.split(';')[0] ?? '').trim().toLowerCase() || null;
}

/** Replaces every `name` header with one holding `value`, last. */
export function setHeader(headers: HeaderPair[], name: string, value: string): void {
  const kept = headers.filter(([n]) => n !== name);
  headers.splice(0, headers.length, ...kept, [name, value]);
}
