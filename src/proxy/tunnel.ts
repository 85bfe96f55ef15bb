import type net from 'node:net';
import type { Duplex } from 'node:stream';

export interface TunnelLimits { readonly idleMs: number }

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
export function openTunnel(client: Duplex & { setTimeout?: (ms: number, cb?: () => void) => unknown }, head: Buffer, connect: Promise<net.Socket>, limits: TunnelLimits, on: TunnelEvents): void {
  let open = 2;
  let upstream: net.Socket | null = null;
  const closed = (): void => {
    if (--open === 0) on.closed();
  };
  // The agent may leave before the upstream answers: the connection made for it is closed as soon as it exists.
  client.once('close', () => {
    upstream?.destroy();
    closed();
  });
  client.once('error', () => upstream?.destroy());
  connect.then(
    (socket) => {
      upstream = socket;
      socket.once('close', closed);
      socket.once('error', () => client.destroy());
      if (client.destroyed) {
        socket.destroy();
        return;
      }
      on.opened();
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) socket.write(head);
      const idle = (): void => {
        socket.destroy();
        client.destroy();
      };
      // Each socket's timer counts its reads and writes, so traffic in either direction keeps both alive.
      socket.setTimeout(limits.idleMs, idle);
      client.setTimeout?.(limits.idleMs, idle);
      // pipe() carries backpressure each way and forwards each side's FIN as end(); half-closed streams finish.
      client.pipe(socket);
      socket.pipe(client);
    },
    (err: Error & { code?: string }) => {
      closed();
      if (!client.destroyed) on.failed(err);
    },
  );
}
