import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/** Who an agent on the TLS listener is, by its X.509-SVID, and until when that certificate says so. */
export interface PeerIdentity {
  readonly spiffeId: string;
  readonly notAfterMs: number;
}

const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._-]+)+$/;
const TRUST_DOMAIN = /^spiffe:\/\/([a-z0-9._-]+)\/?$/;

/** Each TLS-listener socket's identity, read once when its handshake completed (renegotiation is off). */
const identities = new WeakMap<object, PeerIdentity | null>();

/** The identity the handshake on this socket established; null for a plain socket or a certificate that names nobody. */
export function peerIdentity(socket: unknown): PeerIdentity | null {
  return typeof socket === 'object' && socket !== null ? identities.get(socket) ?? null : null;
}

/**
 * Reads, once, who the certificate on a socket whose handshake just completed says the agent is: the handshake
 * verified it against the trust bundle (chain, dates); it must be a leaf (not a CA) with exactly one URI SAN that is a
 * SPIFFE ID, and the anchor its chain ends at, when it names a trust domain (`spiffe://TD`, as SPIRE's CAs do), must
 * name the ID's: a federated bundle's other domains cannot issue this domain's IDs. Anything else identifies nobody;
 * a token may still.
 */
export function recordPeer(socket: TLSSocket, anchors: readonly X509Certificate[]): PeerIdentity | null {
  const identity = socket.authorized ? svidOf(socket.getPeerCertificate(true), anchors) : null;
  identities.set(socket, identity);
  return identity;
}

function svidOf(cert: DetailedPeerCertificate, anchors: readonly X509Certificate[]): PeerIdentity | null {
  if (cert === null || typeof cert !== 'object' || cert.ca === true || typeof cert.subjectaltname !== 'string') return null;
  // Node writes SANs as `TYPE:value, …`, escaping (JSON) any value with a comma or quote: none of those is a SPIFFE ID.
  const uris = cert.subjectaltname.split(', ').filter((e) => e.startsWith('URI:'));
  if (uris.length !== 1) return null;
  const id = (uris[0] as string).slice(4);
  const m = SPIFFE_ID.exec(id);
  const notAfterMs = Date.parse(cert.valid_to);
  if (m === null || Number.isNaN(notAfterMs)) return null;
  const anchor = anchorOf(cert, anchors);
  if (anchor === null) return null;
  const anchorDomain = trustDomainOf(anchor);
  if (anchorDomain !== null && anchorDomain !== m[1]) return null;
  return { spiffeId: id, notAfterMs };
}

/**
 * The bundle certificate this leaf chains to, walked by signatures: each step up must be a CA whose key signed the
 * certificate below it, and the walk ends only at a certificate of the bundle. What the peer sent is only a pool of
 * candidates (Node links it by names and key ids, not signatures: a decoy with a copied subject would otherwise
 * decide which anchor "verified" it).
 */
function anchorOf(leaf: DetailedPeerCertificate, anchors: readonly X509Certificate[]): X509Certificate | null {
  const sent: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = leaf; c !== undefined && c.raw !== undefined && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    sent.push(new X509Certificate(c.raw));
  }
  let cur = sent[0];
  for (let depth = 0; cur !== undefined && depth < 8; depth++) {
    const here: X509Certificate = cur;
    const anchor = anchors.find((a) => here.checkIssued(a) && here.verify(a.publicKey));
    if (anchor !== undefined) return anchor;
    cur = sent.find((c) => c.ca && c.fingerprint256 !== here.fingerprint256 && here.checkIssued(c) && here.verify(c.publicKey));
  }
  return null;
}

/** The trust domain a CA certificate names in its URI SAN (`spiffe://example.org`), or null when it names none. */
export function trustDomainOf(cert: { readonly subjectaltname?: string } | X509Certificate): string | null {
  const sans = cert instanceof X509Certificate ? cert.subjectAltName : cert.subjectaltname;
  const uris = (sans ?? '').split(', ').filter((e) => e.startsWith('URI:')).map((e) => TRUST_DOMAIN.exec(e.slice(4))?.[1]).filter((d): d is string => d !== undefined);
  return uris.length === 1 ? (uris[0] as string) : null;
}

/** Whether a socket's certificate still chains, by signatures, to one of these anchors (after the bundle changed on disk). */
export function chainTrusted(socket: TLSSocket, anchors: readonly X509Certificate[]): boolean {
  return anchorOf(socket.getPeerCertificate(true), anchors) !== null;
}
