import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isIPv4 } from 'node:net';

/**
 * The UID that owns the other end of a TCP connection on this host (its network namespace): the kernel's socket
 * table (`/proc/net/tcp`) lists every socket with its local address, state and owner. Redirected by the egress lock,
 * an agent's socket keeps its own address and port, which is the peer keyswap sees. Null when no established
 * socket has that address (the peer is on another host, or gone).
 */
export async function peerUid(address: string, port: number): Promise<number | null> {
  const ip = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (!isIPv4(ip)) return null;
  const wanted = `${procHex(ip)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await readFile('/proc/net/tcp', 'utf8').catch(() => '');
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid …; state 01 is ESTABLISHED.
    if (f[1] === wanted && f[3] === '01') return Number(f[7]);
  }
  return null;
}

/** An IPv4 address as /proc/net/tcp writes it: the 32-bit value in the host's byte order, in hex. */
function procHex(ip: string): string {
  const bytes = ip.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'));
  return (endianness() === 'LE' ? bytes.reverse() : bytes).join('');
}
