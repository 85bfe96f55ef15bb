import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The UID that owns the other end of a TCP connection on this host (its network namespace): the kernel's socket
 * table (`/proc/net/tcp`) lists every socket with its local address, state and owner. Redirected by the egress lock,
 * an agent's socket keeps its own address and port, which is the peer keyswap sees. Null when no established
 * socket has that address (the peer is on another host, or gone).
 */
export async function peerUid(address: string, port: number): Promise<number | null> {
  const mapped = address.startsWith('::ffff:') ? address.slice(7) : address;
  const v4 = isIPv4(mapped);
  if (!v4 && !isIPv6(mapped)) return null;
  const wanted = `${v4 ? procHex(mapped) : procHex6(mapped)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // An IPv4 peer of a dual-stack socket is listed in tcp6 as ::ffff:a.b.c.d; keyswap's listeners are one family each.
  const table = await readFile(v4 ? '/proc/net/tcp' : '/proc/net/tcp6', 'utf8').catch(() => '');
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
