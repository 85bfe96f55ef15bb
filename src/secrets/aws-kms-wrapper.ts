import { awsClientOptions, awsErrorName } from './aws-client-options.js';
import type { KeyWrapper } from './key-wrapper.js';
import { WRAP_CONTEXT } from './key-wrapper.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * AWS KMS through the official SDK: Encrypt and Decrypt with the key ARN and the encryption context
 * `{ purpose: keyswap-store-kek/v1 }`, region taken from the ARN. Credentials as the aws_secrets_manager backend
 * takes them (keyswap's environment, read once, else the SDK's chain).
 */
export async function awsKmsWrapper(arn: string, opts: { endpoint: string | null; caFile: string | null; timeoutMs: number }, env: Env): Promise<KeyWrapper> {
  const m = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(key|alias)\/.+$/.exec(arn);
  if (!m) throw new Error(`aws_kms://${arn}: not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)`);
  const sdk = await import('@aws-sdk/client-kms');
  const client = new sdk.KMSClient(await awsClientOptions(`aws_kms://${arn}`, { region: m[1] as string, endpoint: opts.endpoint, endpointVariable: 'AWS_ENDPOINT_URL_KMS', caFile: opts.caFile, timeoutMs: opts.timeoutMs }, env));
  const context = { purpose: WRAP_CONTEXT };
  const named = (err: unknown): Error => new Error(`aws_kms://${arn}: ${awsErrorName(err)}`);
  return {
    uri: `aws_kms://${arn}`,
    async wrap(key) {
      try {
        const out = await client.send(new sdk.EncryptCommand({ KeyId: arn, Plaintext: key, EncryptionContext: context }));
        return Buffer.from(out.CiphertextBlob as Uint8Array).toString('base64');
      } catch (err) {
        throw named(err);
      }
    },
    async unwrap(wrapped) {
      try {
        const out = await client.send(new sdk.DecryptCommand({ KeyId: arn, CiphertextBlob: Buffer.from(wrapped, 'base64'), EncryptionContext: context }));
        return Buffer.from(out.Plaintext as Uint8Array);
      } catch (err) {
        throw named(err);
      }
    },
    async close() {
      client.destroy();
    },
  };
}
