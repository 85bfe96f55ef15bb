import net from 'node:net';

/** 127.0.0.0/8, ::1 and `localhost`: the only addresses keyswap listens on without --allow-non-loopback. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}
