import net from 'node:net';
import forge from 'node-forge';

declare module 'node-forge' {
  namespace util {
    /** node-forge's own (util.js), used for IP SANs; @types/node-forge leaves them out. Binary strings. */
    function bytesFromIP(ip: string): string | null;
    function bytesToIP(bytes: string): string | null;
  }
}

/**
 * The hosts a config has keyswap decrypt, so the names its CA must be able to sign for: `any` when keyswap mints
 * for whatever host an agent asks (`tls_termination: all` with unmatched traffic forwarded). A `*.example.com`
 * binding is listed as itself.
 */
export type NameScope = { readonly kind: 'any' } | { readonly kind: 'hosts'; readonly hosts: readonly string[] };

export type Subtree =
  | { readonly type: 'dns'; readonly name: string }
  | { readonly type: 'ip'; readonly cidr: string }
  /** A GeneralName form keyswap never writes (email, URI, directory name): kept only to be shown. */
  | { readonly type: 'other'; readonly tag: number };

/** A CA certificate's NameConstraints extension (RFC 5280 §4.2.1.10), as keyswap writes it and reads it back. */
export type NameConstraints =
  | { readonly kind: 'none' }
  | { readonly kind: 'subtrees'; readonly permitted: readonly Subtree[]; readonly excluded: readonly Subtree[] };

const NAME_CONSTRAINTS_OID = '2.5.29.30';

/**
 * A DNS name no real host has (RFC 6761 reserves `.invalid`): the permitted subtree of a CA that decrypts
 * nothing. Without a DNS entry in permittedSubtrees, DNS names would not be constrained at all.
 */
const NOTHING = 'invalid';

/**
 * The constraints for a CA that signs for exactly `scope`: each bound DNS name (a wildcard's base domain) and each
 * bound IP address; every IPv4 and IPv6 address excluded unless one of that family is bound, so a stolen key
 * cannot mint an IP certificate either. `any` gives none: such a CA must sign for any host.
 */
export function constraintsFor(scope: NameScope): NameConstraints {
  if (scope.kind === 'any') return { kind: 'none' };
  const ips = [...new Set(scope.hosts.filter((h) => net.isIP(h) !== 0))].sort();
  const names = [...new Set(scope.hosts.filter((h) => net.isIP(h) === 0).map((h) => h.replace(/^\*\./, '')))].sort();
  // A name under another listed name adds nothing: `example.com` already permits `api.example.com`.
  const dns = names.filter((n) => !names.some((other) => other !== n && isWithin(n, other)));
  const permitted: Subtree[] = [
    ...(dns.length > 0 ? dns : [NOTHING]).map((name) => ({ type: 'dns' as const, name })),
    ...ips.map((ip) => ({ type: 'ip' as const, cidr: `${ip}/${net.isIPv4(ip) ? 32 : 128}` })),
  ];
  const excluded: Subtree[] = [];
  if (!ips.some((ip) => net.isIPv4(ip))) excluded.push({ type: 'ip', cidr: '0.0.0.0/0' });
  if (!ips.some((ip) => net.isIPv6(ip))) excluded.push({ type: 'ip', cidr: '::/0' });
  return { kind: 'subtrees', permitted, excluded };
}

/** The hosts in `scope` a CA with these constraints cannot sign for; for `any`, one entry unless unconstrained. */
export function uncoveredHosts(c: NameConstraints, scope: NameScope): string[] {
  if (c.kind === 'none') return [];
  if (scope.kind === 'any') return ['any host (tls_termination: all)'];
  return scope.hosts.filter((h) => !isPermitted(c, h));
}

/**
 * RFC 5280's rule, as OpenSSL applies it to a leaf's SAN: a name must fall in one permitted subtree of its own
 * type (when there are any of that type) and in no excluded one. A wildcard SAN is checked as written, so
 * `*.example.com` needs `example.com` (or a parent) permitted.
 */
function isPermitted(c: Extract<NameConstraints, { kind: 'subtrees' }>, host: string): boolean {
  const isIp = net.isIP(host) !== 0;
  const matches = (s: Subtree): boolean => (isIp ? s.type === 'ip' && inCidr(host, s.cidr) : s.type === 'dns' && isWithin(host, s.name));
  const sameType = c.permitted.filter((s) => s.type === (isIp ? 'ip' : 'dns'));
  return (sameType.length === 0 || sameType.some(matches)) && !c.excluded.some(matches);
}

function isWithin(name: string, base: string): boolean {
  return name === base || name.endsWith(`.${base}`);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bits = ''] = cidr.split('/');
  const family = net.isIPv4(base) ? 'ipv4' : 'ipv6';
  if (net.isIP(ip) !== (family === 'ipv4' ? 4 : 6)) return false;
  const list = new net.BlockList();
  list.addSubnet(base, Number(bits), family);
  return list.check(ip, family);
}

/** One line for people: what the CA may sign for. */
export function describeConstraints(c: NameConstraints): string {
  if (c.kind === 'none') return 'none (its key can sign for any host)';
  const show = (s: Subtree): string => (s.type === 'dns' ? s.name : s.type === 'ip' ? s.cidr : `[name form ${s.tag}]`);
  const permitted = c.permitted.filter((s) => !(s.type === 'dns' && s.name === NOTHING)).map(show);
  return `permitted ${permitted.length > 0 ? permitted.join(', ') : 'no host'}${c.excluded.length > 0 ? `; excluded ${c.excluded.map(show).join(', ')}` : ''}`;
}

/** The critical NameConstraints extension for node-forge's setExtensions, or null for an unconstrained CA. */
export function nameConstraintsExtension(c: NameConstraints): { id: string; critical: true; value: forge.asn1.Asn1 } | null {
  if (c.kind === 'none') return null;
  const { asn1 } = forge;
  const subtrees = (tag: number, list: readonly Subtree[]): forge.asn1.Asn1 =>
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, true, list.map((s) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [generalName(s)])));
  // GeneralSubtrees is SIZE (1..MAX): an empty list is left out, never written empty.
  const value = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    ...(c.permitted.length > 0 ? [subtrees(0, c.permitted)] : []),
    ...(c.excluded.length > 0 ? [subtrees(1, c.excluded)] : []),
  ]);
  // RFC 5280: conforming CAs MUST mark it critical, so a client that cannot enforce it refuses the CA instead.
  return { id: NAME_CONSTRAINTS_OID, critical: true, value };
}

function generalName(s: Subtree): forge.asn1.Asn1 {
  const { asn1 } = forge;
  if (s.type === 'dns') return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 2, false, s.name);
  if (s.type === 'other') throw new Error('keyswap never writes other name forms');
  const [base = '', bits = ''] = s.cidr.split('/');
  const address = forge.util.bytesFromIP(base);
  if (address === null) throw new Error(`not an IP address: ${base}`);
  // iPAddress in a constraint is the address followed by its mask (RFC 5280 §4.2.1.10).
  const mask = Array.from({ length: address.length }, (_, i) => String.fromCharCode((0xff00 >> Math.min(8, Math.max(0, Number(bits) - i * 8))) & 0xff)).join('');
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 7, false, address + mask);
}

/**
 * Reads the NameConstraints of a certificate parsed by node-forge, from the extension's own DER (forge only
 * parses it itself from 1.4 on). Throws on a value it cannot read.
 */
export function readNameConstraints(cert: forge.pki.Certificate): NameConstraints {
  const ext = (cert.extensions as { id?: string; value?: string }[]).find((e) => e.id === NAME_CONSTRAINTS_OID);
  if (ext?.value === undefined) return { kind: 'none' };
  const { asn1 } = forge;
  const top = asn1.fromDer(ext.value);
  const permitted: Subtree[] = [];
  const excluded: Subtree[] = [];
  for (const trees of asArray(top.value)) {
    const list = trees.type === 0 ? permitted : trees.type === 1 ? excluded : null;
    if (list === null || trees.tagClass !== asn1.Class.CONTEXT_SPECIFIC) throw new Error('unexpected NameConstraints field');
    for (const subtree of asArray(trees.value)) {
      const base = asArray(subtree.value)[0];
      if (base === undefined) throw new Error('empty GeneralSubtree');
      list.push(subtreeOf(base));
    }
  }
  return { kind: 'subtrees', permitted, excluded };
}

function subtreeOf(base: forge.asn1.Asn1): Subtree {
  if (base.type === 2 && typeof base.value === 'string') return { type: 'dns', name: base.value };
  if (base.type === 7 && typeof base.value === 'string' && (base.value.length === 8 || base.value.length === 32)) {
    const half = base.value.length / 2;
    const address = forge.util.bytesToIP(base.value.slice(0, half));
    const bits = [...base.value.slice(half)].reduce((n, ch) => n + popCount(ch.charCodeAt(0)), 0);
    if (address === null) throw new Error('unreadable iPAddress subtree');
    return { type: 'ip', cidr: `${address}/${bits}` };
  }
  return { type: 'other', tag: base.type };
}

function asArray(v: forge.asn1.Asn1['value']): forge.asn1.Asn1[] {
  if (!Array.isArray(v)) throw new Error('expected a constructed ASN.1 value');
  return v;
}

function popCount(byte: number): number {
  let n = 0;
  for (let b = byte; b > 0; b >>= 1) n += b & 1;
  return n;
}
