import { createHmac, hkdfSync } from 'node:crypto';
import type { Secret } from '../secrets/index.js';

/**
 * The keys replicas share, each derived from `shared_state.key_secret` with HKDF for one use: encrypting minted
 * credentials in Redis, naming them there (an HMAC, so a key name tests no guess of a secret), and recognising a
 * refresh token without storing a digest of it.
 */
export interface SharedKeys {
  readonly seal: Buffer;
  readonly name: Buffer;
  readonly mac: Buffer;
}

/** At least this many bytes of key material: a passphrase-sized key would make the sealed tokens guessable offline. */
const MIN_KEY_BYTES = 32;

export function deriveSharedKeys(keySecret: Secret, secretName: string): SharedKeys {
  const material = Buffer.from(keySecret.reveal(), 'utf8');
  if (material.length < MIN_KEY_BYTES) throw new Error(`shared_state.key_secret: the secret ${secretName} holds ${material.length} bytes; it needs ${MIN_KEY_BYTES} or more random bytes (e.g. openssl rand -base64 48), the same on every replica`);
  const derive = (info: string): Buffer => Buffer.from(hkdfSync('sha256', material, 'keyswap shared_state', info, 32));
  return { seal: derive('mint-credential-seal'), name: derive('mint-credential-name'), mac: derive('refresh-token-mac') };
}

export function macOf(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}
