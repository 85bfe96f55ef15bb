import type { AlertData } from './events.js';

/** How far ahead a credential's expiry is told (issue #27: within 14 days). */
export const EXPIRING_WITHIN_MS = 14 * 86_400_000;

/**
 * The credentials with a known expiry that end within 14 days: keyswap's CA, clients' `expires`, and a TLS
 * listener's certificate. Each is told once per expiry date (the caller keeps what it told).
 */
export function expiringCredentials(items: readonly { readonly credential: string; readonly expiresAtMs: number | null }[], nowMs: number): AlertData[] {
  return items
    .filter((i): i is { credential: string; expiresAtMs: number } => i.expiresAtMs !== null && i.expiresAtMs - nowMs <= EXPIRING_WITHIN_MS)
    .map((i) => ({ credential: i.credential, expires: new Date(i.expiresAtMs).toISOString(), reason: i.expiresAtMs <= nowMs ? 'expired' : 'expiring' }));
}
