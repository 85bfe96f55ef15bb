import type { Minted } from './minted-cache.js';

export type SharedMinted = Minted & { readonly useByMs: number };

/**
 * How replicas mint one credential among them (shared_state; implemented over Redis in shared/): one exchange at a
 * time per credential, its result shared encrypted, and a rotated refresh token handed on so it is never sent twice.
 */
export interface MintSharing {
  /**
   * A credential valid for at least `needMs` more that a replica already minted, or `mint()` run here while no
   * other replica runs it. `identity`: everything the credential depends on (settings and input values), which
   * every replica names alike. `rotates`: the exchange spends a refresh token, so it never runs without the lease.
   */
  once(identity: readonly string[], needMs: number, rotates: boolean, mint: () => Promise<SharedMinted>): Promise<{ readonly minted: SharedMinted; readonly peer: boolean }>;
  /** The refresh token to send: the newest a replica stored, unless the backend holds one no replica rotated from. */
  currentRefreshToken(secretName: string, stored: string): Promise<string>;
  /** The provider rotated `from` into `to`: handed to the other replicas before the access token is used. */
  rotated(secretName: string, from: string, to: string): Promise<void>;
}
