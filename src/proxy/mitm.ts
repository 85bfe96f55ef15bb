import type { Duplex } from 'node:stream';
import tls from 'node:tls';

export interface LeafSource { get(name: string): Promise<tls.SecureContext> }

/**
 * Terminates the agent's TLS with the leaf chosen for the CONNECT target (not for the SNI: an agent whose SNI
 * names another host gets a certificate it will not accept, and any request that still arrives is refused by
 * the destination check). The decrypted socket goes to the one inner http.Server, or to the HTTP/2 server when the
 * agent chose h2: no extra hop, no extra port.
 * An agent that never completes the handshake is cut after `handshakeMs`.
 */
export function terminateTls(client: Duplex, head: Buffer, context: tls.SecureContext, handshakeMs: number): tls.TLSSocket {
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) client.unshift(head);
  const socket = new tls.TLSSocket(client, {
    isServer: true,
    secureContext: context,
    SNICallback: sniAnswer(context),
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  const timer = setTimeout(() => socket.destroy(), handshakeMs).unref();
  // An agent that hangs up mid-handshake is gone: no server holds the socket yet to notice its FIN.
  const hungUp = (): void => { socket.destroy(); };
  socket.once('end', hungUp);
  socket.once('secure', () => {
    clearTimeout(timer);
    socket.off('end', hungUp);
  });
  socket.once('close', () => clearTimeout(timer));
  // A failed handshake (the agent does not trust the CA, or is not speaking TLS) only ends this connection.
  socket.once('error', () => socket.destroy());
  return socket;
}

/**
 * The SNI callback stays on the socket for its whole life: made in terminateTls it would share that call's scope
 * and keep the handshake's timer and closures reachable as long as the connection is open.
 */
function sniAnswer(context: tls.SecureContext): (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void {
  return (_servername, cb) => cb(null, context);
}
