import type http from 'node:http';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { ClientSpec } from '../config/index.js';

/** The CONNECT target of a decrypted connection: the only destination its requests may have (K3). */
export interface ConnState {
  readonly connectHost: string;
  readonly connectPort: number;
  /** The agent that authenticated the CONNECT; every request on this connection acts as it. */
  readonly client: ClientSpec | null;
}

const HANDSHAKE_TIMEOUT_MS = 30_000;

export interface LeafSource { get(host: string): Promise<tls.SecureContext> }

/**
 * Terminates the agent's TLS with a leaf for the CONNECT host and hands the decrypted socket to the one inner
 * http.Server: no extra hop, no extra port. The leaf is chosen by the CONNECT target, not by the SNI: an agent
 * whose SNI names another host gets a certificate it will not accept, and any request that still arrives is
 * refused by the destination check.
 */
export async function terminateTls(
  client: Duplex,
  head: Buffer,
  target: ConnState,
  leaves: LeafSource,
  inner: http.Server,
  states: WeakMap<object, ConnState>,
): Promise<void> {
  const context = await leaves.get(target.connectHost);
  if (client.destroyed) return;
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) client.unshift(head);
  const socket = new tls.TLSSocket(client, {
    isServer: true,
    secureContext: context,
    SNICallback: (_servername, cb) => cb(null, context),
    ALPNProtocols: ['http/1.1'],
  });
  states.set(socket, target);
  // An agent that opens a tunnel and never completes the handshake must not hold a socket forever.
  socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy());
  socket.once('secure', () => socket.setTimeout(0));
  // A failed handshake (the agent does not trust the CA, or is not speaking TLS) only ends this connection.
  socket.once('error', () => socket.destroy());
  inner.emit('connection', socket);
}
