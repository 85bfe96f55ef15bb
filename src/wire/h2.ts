import { requestFraming, type Framing } from './headers.js';

/**
 * An HTTP/2 request's head in the one form the rest of keyswap reads (HTTP/1.1 raw headers): pseudo-headers
 * removed, `:authority` as the Host it stands for, and the body's framing from the stream itself. nghttp2 has
 * already refused connection-specific headers, upper-case names and a content-length the DATA frames contradict.
 * A request naming two authorities (`:authority` and a different `host`) is ambiguous: which one an upstream
 * reads is the differential the destination rule must not depend on (RFC 9113 §8.3.1).
 */
export function h2RequestHead(raw: readonly string[], endAfterHeaders: boolean): { readonly raw: string[]; readonly framing: Framing } {
  let authority: string | null = null;
  const hosts: string[] = [];
  const cookies: string[] = [];
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const value = raw[i + 1] ?? '';
    if (name === ':authority') authority = value;
    else if (name === 'host') hosts.push(value);
    else if (name === 'cookie') cookies.push(value);
    else if (!name.startsWith(':')) out.push(name, value);
  }
  // HTTP/2 may split Cookie into crumbs; one Cookie line, joined with "; ", is what HTTP/1.1 allows (RFC 9113 §8.2.3).
  if (cookies.length > 0) out.push('cookie', cookies.join('; '));
  const host = authority ?? hosts[0];
  if (hosts.length > 1 || (authority !== null && hosts.length === 1 && hosts[0] !== authority)) return { raw: out, framing: { kind: 'ambiguous' } };
  const withHost = host === undefined ? out : ['host', host, ...out];
  if (endAfterHeaders) return { raw: withHost, framing: { kind: 'none' } };
  const framing = requestFraming(withHost);
  // No length: the body is as long as its DATA frames; it goes to an HTTP/1.1 upstream chunked.
  const hasLength = out.some((v, i) => i % 2 === 0 && v === 'content-length');
  return { raw: withHost, framing: framing.kind === 'none' && !hasLength ? { kind: 'chunked' } : framing };
}
