import { createHash, timingSafeEqual } from 'node:crypto';
import { isOpenToAnyClient, type ClientSpec } from '../config/index.js';
import { decodeBasic } from '../wire/index.js';
import type { PeerIdentity } from './peer-identity.js';

export type AuthResult = { readonly ok: true; readonly client: ClientSpec | null } | { readonly ok: false };

/**
 * Who is asking, against the configured clients. Without a `clients:` section every local caller is accepted
 * (client null). With one: an agent whose verified certificate (TLS listener) carries a client's `spiffe_id` is
 * that client until the certificate's notAfter, and may send no token of another; otherwise `Proxy-Authorization:
 * Basic base64(NAME:TOKEN)` must name a token client, compared by SHA-256 in constant time (the token is stored
 * nowhere). Missing, unknown, wrong or expired: refused.
 */
export function authenticate(header: string | undefined, clients: ReadonlyMap<string, ClientSpec> | null, nowMs: number, peer: PeerIdentity | null = null): AuthResult {
  if (isOpenToAnyClient(clients)) return { ok: true, client: null };
  const byCert = peer === null ? undefined : [...clients.values()].find((c) => c.spiffeId === peer.spiffeId);
  if (byCert !== undefined) {
    if (header !== undefined && decodeBasic(header)?.user !== byCert.name) return { ok: false };
    const session = { ...byCert, expiresAtMs: Math.min(byCert.expiresAtMs ?? Number.POSITIVE_INFINITY, peer?.notAfterMs ?? 0) };
    return nowMs < session.expiresAtMs ? { ok: true, client: session } : { ok: false };
  }
  const basic = header === undefined ? null : decodeBasic(header);
  if (basic === null || !basic.decoded.includes(':')) return { ok: false };
  const client = clients.get(basic.user);
  if (client === undefined || client.tokenSha256 === null) return { ok: false };
  const presented = createHash('sha256').update(Buffer.from(basic.password, 'latin1')).digest();
  if (!timingSafeEqual(presented, Buffer.from(client.tokenSha256, 'hex'))) return { ok: false };
  if (client.expiresAtMs !== null && nowMs >= client.expiresAtMs) return { ok: false };
  return { ok: true, client };
}
