import { isIP } from 'node:net';

/** The nftables table keyswap owns: nothing else of the host's ruleset is touched. */
export const TABLE = 'keyswap';

/** Where a locked UID may still connect: keyswap's listeners, and a DNS resolver if named. */
export interface LockSpec {
  readonly uid: number;
  /** keyswap's proxy listeners (`listen`, `listen_tls`): TCP only. */
  readonly listeners: readonly { readonly host: string; readonly port: number }[];
  /** A DNS resolver the UID may query (UDP and TCP 53 to this address); null: none. */
  readonly dns: string | null;
  /** `--transparent`: the UID's outbound TCP to port 443 (IPv4 and IPv6) is redirected to this port of loopback. */
  readonly transparentPort: number | null;
  /** With `transparentPort`: its TCP to port 80 goes to this port (transparent.listen_http); null: rejected. */
  readonly transparentHttpPort?: number | null;
}

/** One address match for a listener's host: a wildcard host means any address of this machine. */
function daddr(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return 'fib daddr type local';
  return isIP(host) === 6 ? `ip6 daddr ${host}` : `ip daddr ${host}`;
}

const chainOf = (uid: number): string => `uid_${uid}`;
const natChainOf = (uid: number): string => `nat_uid_${uid}`;

/**
 * The nft script (one transaction: `nft -f` applies all of it or none) that locks `spec.uid`, and with
 * `transparentPort` redirects its HTTPS (IPv4 and IPv6; a redirect lands on 127.0.0.1 or ::1) to keyswap's
 * transparent listener, and its port 80 to `transparentHttpPort` when there is one: its sockets may reach
 * only keyswap's listeners (and the named resolver), over IPv4 and IPv6; everything else is rejected at once (a TCP
 * reset, an ICMP "administratively prohibited"), so tools fail fast instead of hanging. Other UIDs are untouched:
 * the table's output chain sends each locked UID to its own chain through a verdict map, so locking and unlocking one
 * UID never rewrites another's rules, and re-locking a UID replaces its rules (idempotent).
 */
export function lockScript(spec: LockSpec): string {
  if (!Number.isInteger(spec.uid) || spec.uid <= 0) throw new Error(`uid ${spec.uid}: lock a non-root user's UID`);
  if (spec.listeners.length === 0) throw new Error('no listener to allow: the locked UID could reach nothing');
  const chain = chainOf(spec.uid);
  // A redirected connection is filtered as going to loopback's transparent ports, in both families.
  const redirects = spec.transparentPort === null ? [] : [[443, spec.transparentPort], ...(spec.transparentHttpPort == null ? [] : [[80, spec.transparentHttpPort]])];
  const transparentTargets = redirects.flatMap(([, port]) => [{ host: '127.0.0.1', port: port as number }, { host: '::1', port: port as number }]);
  const listeners = [...spec.listeners, ...transparentTargets.filter((t) => !spec.listeners.some((l) => l.host === t.host && l.port === t.port))];
  const allow = [
    ...listeners.map((l) => `add rule inet ${TABLE} ${chain} ${daddr(l.host)} tcp dport ${l.port} accept`),
    ...(spec.dns === null ? [] : ['udp', 'tcp'].map((p) => `add rule inet ${TABLE} ${chain} ${daddr(spec.dns as string)} ${p} dport 53 accept`)),
  ];
  return [
    ...tableScript(),
    `add chain inet ${TABLE} ${chain}`,
    `flush chain inet ${TABLE} ${chain}`,
    ...allow,
    `add rule inet ${TABLE} ${chain} meta l4proto tcp reject with tcp reset`,
    `add rule inet ${TABLE} ${chain} reject with icmpx type admin-prohibited`,
    // The redirect (or none: a lock without --transparent leaves the chain empty), before the filter sees the packet.
    `add chain inet ${TABLE} ${natChainOf(spec.uid)}`,
    `flush chain inet ${TABLE} ${natChainOf(spec.uid)}`,
    ...redirects.map(([from, to]) => `add rule inet ${TABLE} ${natChainOf(spec.uid)} tcp dport ${from} redirect to :${to}`),
    // The maps' elements last: the UID is sent to its chains only once they are whole (same transaction anyway).
    `add element inet ${TABLE} locked { ${spec.uid} : jump ${chain} }`,
    `add element inet ${TABLE} redirected { ${spec.uid} : jump ${natChainOf(spec.uid)} }`,
    '',
  ].join('\n');
}

/** Removes one UID's lock; the table stays for the others (and goes with `nft delete table inet keyswap`). */
export function unlockScript(uid: number): string {
  return [
    ...tableScript(),
    // `add` of what exists is a no-op, so deleting an absent element or chain cannot fail the transaction.
    `add chain inet ${TABLE} ${chainOf(uid)}`,
    `add chain inet ${TABLE} ${natChainOf(uid)}`,
    `add element inet ${TABLE} locked { ${uid} : jump ${chainOf(uid)} }`,
    `add element inet ${TABLE} redirected { ${uid} : jump ${natChainOf(uid)} }`,
    `delete element inet ${TABLE} locked { ${uid} }`,
    `delete element inet ${TABLE} redirected { ${uid} }`,
    `flush chain inet ${TABLE} ${chainOf(uid)}`,
    `flush chain inet ${TABLE} ${natChainOf(uid)}`,
    `delete chain inet ${TABLE} ${chainOf(uid)}`,
    `delete chain inet ${TABLE} ${natChainOf(uid)}`,
    '',
  ].join('\n');
}

/** The table, its map of locked UIDs and the output hook that consults it (created if absent, never flushed). */
function tableScript(): string[] {
  return [
    `add table inet ${TABLE}`,
    `add map inet ${TABLE} locked { type uid : verdict; }`,
    // Locally generated packets of a locked UID; priority 0 (filter). Established replies to keyswap's own
    // sockets are not this UID's, so keyswap itself is never filtered.
    `add chain inet ${TABLE} output { type filter hook output priority 0; policy accept; }`,
    `flush chain inet ${TABLE} output`,
    `add rule inet ${TABLE} output meta skuid vmap @locked`,
    `add map inet ${TABLE} redirected { type uid : verdict; }`,
    // NAT runs before the filter (priority -100): a redirected connection is filtered as going to keyswap.
    `add chain inet ${TABLE} nat_output { type nat hook output priority -100; policy accept; }`,
    `flush chain inet ${TABLE} nat_output`,
    `add rule inet ${TABLE} nat_output meta skuid vmap @redirected`,
  ];
}
