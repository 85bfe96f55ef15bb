import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { HostPort } from '../config/index.js';

export interface TunnelLimits { readonly connectTimeoutMs: number; readonly idleMs: number }

/** What the tunnel tells its opener: connected (200 sent), could not connect (nothing sent yet), both sides closed. */
export interface TunnelEvents {
  opened(): void;
  failed(err: Error & { code?: string }): void;
  closed(): void;
}

/**
 * An opaque TCP tunnel for a destination keyswap does not decrypt: bytes are copied both ways, nothing is read,
 * so no secret can be injected and none is needed. The agent sees the upstream's own certificate. A tunnel with
 * no byte either way for `idleMs` is closed, so an abandoned one does not hold two descriptors forever.
 * A connection that fails before it is established is handed to `failed`, which answers the agent.
 */
export function openTunnel(client: Duplex & { setTimeout?: (ms: number, cb?: () => void) => unknown }, head: Buffer, dial: HostPort, limits: TunnelLimits, on: TunnelEvents): void {
  const upstream = net.connect({ host: dial.host, port: dial.port, allowHalfOpen: true });
  let established = false;
  let open = 2;
  const closed = (): void => {
    if (--open === 0) on.closed();
  };
  const idle = (): void => {
    upstream.destroy();
    client.destroy();
  };
  const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), limits.connectTimeoutMs);
  upstream.once('connect', () => {
    clearTimeout(timer);
    established = true;
    on.opened();
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    // Each socket's timer counts its reads and writes, so traffic in either direction keeps both alive.
    upstream.setTimeout(limits.idleMs, idle);
    client.setTimeout?.(limits.idleMs, idle);
    // pipe() carries backpressure each way and forwards each side's FIN as end(); half-closed streams finish.
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.once('error', (err: Error & { code?: string }) => {
    clearTimeout(timer);
    if (!established) on.failed(err);
    else client.destroy();
  });
  client.once('error', () => upstream.destroy());
  upstream.once('close', () => {
    clearTimeout(timer);
    closed();
  });
  client.once('close', () => {
    upstream.destroy();
    closed();
  });
}
