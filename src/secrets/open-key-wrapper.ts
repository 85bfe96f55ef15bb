import type { KmsSettings } from '../config/index.js';
import { awsKmsWrapper } from './aws-kms-wrapper.js';
import { gcpKmsWrapper } from './gcp-kms-wrapper.js';
import { KmsKeySource, type KeyWrapper } from './key-wrapper.js';
import { StoreError } from './store-crypto.js';
import { vaultTransitWrapper } from './vault-transit-wrapper.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The key source for `key_kms: URI` (or `secret rekey --to-kms URI`), reaching the KMS as `kms:` says. */
export async function openKmsKeySource(uri: string, kms: KmsSettings, env: Env): Promise<KmsKeySource> {
  return new KmsKeySource(await openKeyWrapper(uri, kms, env));
}

async function openKeyWrapper(uri: string, kms: KmsSettings, env: Env): Promise<KeyWrapper> {
  const m = /^(aws_kms|vault_transit|gcp_kms):\/\/(.+)$/.exec(uri);
  if (m?.[1] === 'aws_kms') {
    try {
      return await awsKmsWrapper(m[2] as string, kms, env);
    } catch (err) {
      throw new StoreError((err as Error).message);
    }
  }
  if (m?.[1] === 'vault_transit') {
    if (kms.vault === null) throw new StoreError(`${uri} needs the Vault that holds it: set backend.config.kms: { address, auth }`);
    return vaultTransitWrapper(m[2] as string, kms.vault);
  }
  if (m?.[1] === 'gcp_kms') {
    try {
      return await gcpKmsWrapper(m[2] as string, kms);
    } catch (err) {
      throw new StoreError((err as Error).message);
    }
  }
  throw new StoreError(`${uri}: keyswap wraps store keys with aws_kms://ARN, gcp_kms://projects/…/cryptoKeys/K or vault_transit://KEYNAME`);
}
