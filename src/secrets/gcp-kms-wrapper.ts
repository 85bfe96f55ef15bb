import { googleClientOptions, googleStatus } from './google-error.js';
import type { KeyWrapper } from './key-wrapper.js';
import { WRAP_CONTEXT } from './key-wrapper.js';

const KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;

/**
 * Google Cloud KMS through the official client (HTTP/JSON transport): encrypt and decrypt with the crypto key and
 * keyswap's purpose as additional authenticated data. Credentials: Application Default Credentials.
 */
export async function gcpKmsWrapper(keyName: string, opts: { endpoint: string | null; timeoutMs: number }): Promise<KeyWrapper> {
  if (!KEY_NAME.test(keyName)) throw new Error(`gcp_kms://${keyName}: not a crypto key name (projects/P/locations/L/keyRings/R/cryptoKeys/K)`);
  const { KeyManagementServiceClient } = await import('@google-cloud/kms');
  const client = new KeyManagementServiceClient(googleClientOptions(opts.endpoint));
  const aad = Buffer.from(WRAP_CONTEXT);
  const named = (err: unknown): Error => {
    const { status, message } = googleStatus(err);
    return new Error(`gcp_kms://${keyName}: ${status}${message === '' ? '' : ` (${message})`}`);
  };
  return {
    uri: `gcp_kms://${keyName}`,
    async wrap(key) {
      try {
        const [out] = await client.encrypt({ name: keyName, plaintext: key, additionalAuthenticatedData: aad }, { timeout: opts.timeoutMs });
        return Buffer.from(out.ciphertext as Uint8Array | string).toString('base64');
      } catch (err) {
        throw named(err);
      }
    },
    async unwrap(wrapped) {
      try {
        const [out] = await client.decrypt({ name: keyName, ciphertext: Buffer.from(wrapped, 'base64'), additionalAuthenticatedData: aad }, { timeout: opts.timeoutMs });
        return Buffer.from(out.plaintext as Uint8Array | string);
      } catch (err) {
        throw named(err);
      }
    },
    close: () => client.close(),
  };
}
