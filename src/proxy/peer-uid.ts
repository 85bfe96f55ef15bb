import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';

/** One accepted connection, as keyswap's side of it sees it. */
export interface PeerQuery {
  /** The peer's address and port (the agent's socket's local end). */
  readonly address: string;
  readonly port: number;
  /** keyswap's listening end of it: where a direct connection was addressed. */
  readonly listenAddress: string;
  readonly listenPort: number;
  /** The port a redirected connection was addressed to (443, or 80): its socket still says so. null: none is. */
  readonly redirectedFrom: number | null;
}

/**
 * The UID that owns the other end of a TCP connection on this host (its network namespace), from the kernel's
 * socket tables (`/proc/net/tcp` and `tcp6`; an IPv4 peer may be an IPv6 socket, listed as ::ffff:a.b.c.d). Linux
 * lets sockets of different users share a local address and port when their destinations differ, and anyone can
 * read the tables, so the local end alone proves nothing: a candidate must also be addressed to this listener, or to
 * the port the egress lock redirects (the agent's socket keeps its original destination), and every candidate must
 * belong to the same UID. Null when none does, or when they disagree (refused: fail closed).
 */
export async function peerUid(q: PeerQuery, tables: () => Promise<readonly TableRow[]> = readTables): Promise<number | null> {
  const mapped = q.address.startsWith('::ffff:') ? q.address.slice(7) : q.address;
  const locals = isIPv4(mapped) ? [procHex(mapped), procHex6(`::ffff:${v4Groups(mapped)}`)] : isIPv6(mapped) ? [procHex6(mapped)] : [];
  if (locals.length === 0) return null;
  const port = hexPort(q.port);
  const listenMapped = q.listenAddress.startsWith('::ffff:') ? q.listenAddress.slice(7) : q.listenAddress;
  const listens = isIPv4(listenMapped) ? [procHex(listenMapped), procHex6(`::ffff:${v4Groups(listenMapped)}`)] : [procHex6(listenMapped)];
  const owners = new Set<number>();
  for (const row of await tables()) {
    if (row.state !== '01' || row.localPort !== port || !locals.includes(row.localAddress)) continue;
    const direct = row.remotePort === hexPort(q.listenPort) && listens.includes(row.remoteAddress);
    if (direct || (q.redirectedFrom !== null && row.remotePort === hexPort(q.redirectedFrom))) owners.add(row.uid);
  }
  return owners.size === 1 ? (owners.values().next().value as number) : null;
}

export interface TableRow { readonly localAddress: string; readonly localPort: string; readonly remoteAddress: string; readonly remotePort: string; readonly state: string; readonly uid: number }

/**
 * Both tables, read once for every lookup waiting when the read starts: a flood of connections costs one read
 * at a time, not one each. A lookup that arrives during a read waits for the next one, so its own connection (made
 * before it asked) is in what it reads.
 */
let reading: Promise<readonly TableRow[]> | null = null;
let next: Promise<readonly TableRow[]> | null = null;
function readTables(): Promise<readonly TableRow[]> {
  if (reading === null) {
    reading = readBoth().finally(() => { reading = null; });
    return reading;
  }
  next ??= reading.catch(() => []).then(() => {
    next = null;
    return readTables();
  });
  return next;
}

async function readBoth(): Promise<readonly TableRow[]> {
  const [v4, v6] = await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map((f) => readFile(f, 'utf8').catch(() => '')));
  const rows: TableRow[] = [];
  for (const line of `${v4}\n${v6}`.split('\n')) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid …; state 01 is ESTABLISHED.
    const f = line.trim().split(/\s+/);
    const [la, lp] = (f[1] ?? '').split(':');
    const [ra, rp] = (f[2] ?? '').split(':');
    if (la === undefined || lp === undefined || ra === undefined || rp === undefined || f[3] === undefined || f[7] === undefined || !/^\d+$/.test(f[7])) continue;
    rows.push({ localAddress: la, localPort: lp, remoteAddress: ra, remotePort: rp, state: f[3], uid: Number(f[7]) });
  }
  return rows;
}

const hexPort = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');

/** a.b.c.d as the two IPv6 groups it ends a mapped address with. */
function v4Groups(ip: string): string {
  const b = ip.split('.').map(Number) as [number, number, number, number];
  return `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
}

/** An IPv4 address as /proc/net/tcp writes it: the 32-bit value in the host's byte order, in hex. */
function procHex(ip: string): string {
  const bytes = ip.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'));
  return (endianness() === 'LE' ? bytes.reverse() : bytes).join('');
}

/** An IPv6 address as /proc/net/tcp6 writes it: four 32-bit words, each in the host's byte order, in hex. */
function procHex6(ip: string): string {
  const [head = '', tail = ''] = ip.split('::');
  const part = (t: string): string[] => (t === '' ? [] : t.split(':'));
  const groups = [...part(head), ...Array(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)].map((g) => g.padStart(4, '0'));
  const bytes = groups.flatMap((g) => [g.slice(0, 2), g.slice(2)]).map((b) => b.toUpperCase());
  let out = '';
  for (let w = 0; w < 4; w++) {
    const word = bytes.slice(w * 4, w * 4 + 4);
    out += (endianness() === 'LE' ? word.reverse() : word).join('');
  }
  return out;
}
