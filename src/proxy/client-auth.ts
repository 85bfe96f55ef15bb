import { createHash, timingSafeEqual } from 'node:crypto';
import type { ClientSpec } from '../config/index.js';

export type AuthResult = { readonly ok: true; readonly client: ClientSpec | null } | { readonly ok: false };

/**
 * Checks `Proxy-Authorization: Basic base64(NAME:TOKEN)` against the configured clients. Without a `clients:`
 * section every local caller is accepted (client null); with one, a missing, unknown, wrong or expired token is
 * refused. Tokens are compared by SHA-256 in constant time; the token itself is stored nowhere.
 */
export function authenticate(header: string | undefined, clients: ReadonlyMap<string, ClientSpec> | null, nowMs: number): AuthResult {
  if (clients === null) return { ok: true, client: null };
  if (header === undefined || header.slice(0, 6).toLowerCase() !== 'basic ') return { ok: false };
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { ok: false };
  const client = clients.get(decoded.slice(0, colon));
  if (client === undefined) return { ok: false };
  const presented = createHash('sha256').update(decoded.slice(colon + 1), 'utf8').digest();
  if (!timingSafeEqual(presented, Buffer.from(client.tokenSha256, 'hex'))) return { ok: false };
  if (client.expiresAtMs !== null && nowMs >= client.expiresAtMs) return { ok: false };
  return { ok: true, client };
}
