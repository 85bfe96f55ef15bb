import type { VaultConnection } from '../config/index.js';
import type { KeyWrapper } from './key-wrapper.js';
import { WRAP_CONTEXT } from './key-wrapper.js';
import { VaultClient, vaultErrors } from './vault-client.js';

/**
 * Vault's transit engine: `transit/encrypt/KEY` and `transit/decrypt/KEY` (mount configurable) with the key's
 * plaintext base64, logged in as the vault backend logs in. Transit keys made with `derived=true` need a context:
 * keyswap always sends its purpose as one, and keys without derivation ignore it.
 */
export async function vaultTransitWrapper(keyName: string, conn: VaultConnection & { readonly mount: string }): Promise<KeyWrapper> {
  const client = await VaultClient.open(conn, `vault_transit://${keyName}`);
  const context = Buffer.from(WRAP_CONTEXT).toString('base64');
  const call = async (op: 'encrypt' | 'decrypt', body: Record<string, string>): Promise<Record<string, unknown>> => {
    const r = await client.call('POST', `${conn.mount}/${op}/${encodeURIComponent(keyName)}`, body, AbortSignal.timeout(conn.timeoutMs));
    const data = (r.body as { data?: Record<string, unknown> } | null)?.data;
    if (r.status !== 200 || data === undefined) throw new Error(`vault_transit://${keyName}: ${op} answered ${r.status} (${vaultErrors(r.body)})`);
    return data;
  };
  return {
    uri: `vault_transit://${keyName}`,
    async wrap(key) {
      const data = await call('encrypt', { plaintext: key.toString('base64'), context });
      if (typeof data.ciphertext !== 'string') throw new Error(`vault_transit://${keyName}: encrypt answered without a ciphertext`);
      return data.ciphertext;
    },
    async unwrap(wrapped) {
      const data = await call('decrypt', { ciphertext: wrapped, context });
      if (typeof data.plaintext !== 'string') throw new Error(`vault_transit://${keyName}: decrypt answered without a plaintext`);
      return Buffer.from(data.plaintext, 'base64');
    },
    close: () => client.close(),
  };
}
