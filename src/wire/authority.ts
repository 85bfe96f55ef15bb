/**
 * Host and authority parsing for every layer: CONNECT targets, absolute URLs, Host headers, route origins and
 * keyswap's own addresses. One parser, so the router, the policy and the upstream never read a name differently.
 */

export interface Authority { readonly host: string; readonly port: number | null }

const DNS_NAME = /^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_CHARS = /^[0-9a-f:.]+$/;
/**
 * A last label that resolvers read as a number (`127.1`, `2130706433`, `0x7f000001`): no top-level domain is
 * numeric, and inet_aton turns these into IPv4 addresses without a DNS query, so they would name a host by an
 * address none of keyswap's checks sees.
 */
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/;

export function isIpLiteral(host: string): boolean {
  return IPV4.test(host) || host.includes(':');
}

/**
 * Parses `host[:port]` strictly: a DNS name, IPv4 or `[IPv6]`, and a decimal port 1..65535. Lower-cases the host
 * and drops one trailing dot, so `API.example.com.` and `api.example.com` are one destination. Returns null for
 * anything else: a lenient parser is how `Host: x:99999` once killed a proxy.
 */
export function parseAuthority(text: string): Authority | null {
  return parseHostAndPort(text, 1);
}

/**
 * An address keyswap listens on (`--metrics HOST:PORT`): the same host rules as parseAuthority, a port required,
 * and port 0 allowed, which asks the kernel for any free port (something to listen on, never a destination).
 */
export function parseListenAddress(text: string): { readonly host: string; readonly port: number } | null {
  const a = parseHostAndPort(text, 0);
  return a === null || a.port === null ? null : { host: a.host, port: a.port };
}

function parseHostAndPort(text: string, minPort: 0 | 1): Authority | null {
  let host: string;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return null;
    host = text.slice(1, end).toLowerCase();
    const rest = text.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
    // IPv4-mapped and -compatible forms (::ffff:7f00:1, ::127.0.0.1) name an IPv4 host in IPv6 clothing: refused.
    if (!IPV6_CHARS.test(host) || ipv6Groups(host) === null || host.includes('.') || /^(0*:)*:?ffff:/.test(host)) return null;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      portText = text.slice(colon + 1);
      host = text.slice(0, colon);
    } else {
      host = text;
    }
    host = host.toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!IPV4.test(host) && (!DNS_NAME.test(host) || NUMERIC_LABEL.test(host.slice(host.lastIndexOf('.') + 1)))) return null;
  }
  if (portText === null) return { host, port: null };
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < minPort || port > 65535) return null;
  return { host, port };
}

/** The Host header keyswap sends upstream: the destination it checked, in one canonical spelling. */
export function formatAuthority(host: string, port: number, scheme: 'https' | 'http'): string {
  const name = host.includes(':') ? `[${host}]` : host;
  return port === (scheme === 'https' ? 443 : 80) ? name : `${name}:${port}`;
}

/** Names and addresses that reach this machine's loopback interface (or every interface, for 0.0.0.0 and ::). */
export function isLocalHost(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost') || host === '0.0.0.0' || /^127\.\d+\.\d+\.\d+$/.test(host)) return true;
  const groups = host.includes(':') ? ipv6Groups(host) : null;
  return groups !== null && groups.slice(0, 7).every((g) => g === 0) && (groups[7] === 0 || groups[7] === 1);
}

/** A connection's peer address (as Node reports it: 127.0.0.1, ::1, ::ffff:127.0.0.1) on this machine's loopback. */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.toLowerCase().startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(v4);
}

/** The eight 16-bit groups of an IPv6 literal (no IPv4 tail), or null when it is not one. */
function ipv6Groups(host: string): number[] | null {
  const halves = host.split('::');
  if (halves.length > 2) return null;
  const part = (t: string | undefined): string[] => (t === undefined || t === '' ? [] : t.split(':'));
  const left = part(halves[0]);
  const right = part(halves[1]);
  const missing = 8 - left.length - right.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return null;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => Number.parseInt(g, 16));
}
