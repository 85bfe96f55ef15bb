import { TLSSocket } from 'node:tls';

/** Who an agent on the TLS listener is, by its X.509-SVID, and until when that certificate says so. */
export interface PeerIdentity {
  readonly spiffeId: string;
  readonly notAfterMs: number;
}

const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;

/**
 * The SPIFFE ID of the client certificate on this socket, when there is one that counts: the handshake verified
 * it against `client_ca_file` (chain, validity dates), it is a leaf (not a CA), and it carries exactly one URI SAN
 * that is a SPIFFE ID (the X.509-SVID rule). Anything else identifies nobody; a token may still.
 */
export function peerIdentity(socket: unknown): PeerIdentity | null {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  const cert = socket.getPeerCertificate();
  if (cert === null || typeof cert !== 'object' || cert.ca === true || typeof cert.subjectaltname !== 'string') return null;
  // Node writes SANs as `TYPE:value, …`, quoting (JSON) any value with a comma or quote: none of those is a SPIFFE ID.
  const uris = cert.subjectaltname.split(', ').filter((e) => e.startsWith('URI:'));
  if (uris.length !== 1) return null;
  const id = (uris[0] as string).slice(4);
  const notAfterMs = Date.parse(cert.valid_to);
  if (!SPIFFE_ID.test(id) || Number.isNaN(notAfterMs)) return null;
  return { spiffeId: id, notAfterMs };
}
