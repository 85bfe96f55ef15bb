import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { HostPort } from '../config/index.js';
import { rawRefusal } from './refusal.js';

/**
 * An opaque TCP tunnel for a destination keyswap does not decrypt: bytes are copied both ways, nothing is read,
 * so no secret can be injected and none is needed. The agent sees the upstream's own certificate.
 * `onClose` runs once, when both sides are closed.
 */
export function openTunnel(client: Duplex, head: Buffer, dial: HostPort, connectTimeoutMs: number, onClose: () => void): void {
  const upstream = net.connect({ host: dial.host, port: dial.port, allowHalfOpen: true });
  let established = false;
  let open = 2;
  const closed = (): void => {
    if (--open === 0) onClose();
  };
  const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), connectTimeoutMs);
  upstream.once('connect', () => {
    clearTimeout(timer);
    established = true;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    // pipe() carries backpressure each way and forwards each side's FIN as end(); half-closed streams finish.
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.once('error', () => {
    clearTimeout(timer);
    if (!established && client.writable) client.end(rawRefusal('upstream_failed'));
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
