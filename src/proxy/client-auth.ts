import { createHash, timingSafeEqual } from 'node:crypto';
import { isOpenToAnyClient, type ClientSpec } from '../config/index.js';
import { decodeBasic } from '../wire/index.js';

export type AuthResult = { readonly ok: true; readonly client: ClientSpec | null } | { readonly ok: false };

/**
 * Checks `Proxy-Authorization: Basic base64(NAME:TOKEN)` against the configured clients. Without a `clients:`
 * section every local caller is accepted (client null); with one, a missing, unknown, wrong or expired token is
 * refused. Tokens are compared by SHA-256 in constant time; the token itself is stored nowhere.
 */
export function authenticate(header: string | undefined, clients: ReadonlyMap<string, ClientSpec> | null, nowMs: number): AuthResult {
  if (isOpenToAnyClient(clients)) return { ok: true, client: null };
  const basic = header === undefined ? null : decodeBasic(header);
  if (basic === null || !basic.decoded.includes(':')) return { ok: false };
  const client = clients.get(basic.user);
  if (client === undefined) return { ok: false };
  const presented = createHash('sha256').update(Buffer.from(basic.password, 'latin1')).digest();
  if (!timingSafeEqual(presented, Buffer.from(client.tokenSha256, 'hex'))) return { ok: false };
  if (client.expiresAtMs !== null && nowMs >= client.expiresAtMs) return { ok: false };
  return { ok: true, client };
}
