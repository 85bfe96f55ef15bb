import { readFile } from 'node:fs/promises';
import https from 'node:https';
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
  const ca = opts.caFile === null ? undefined : await readFile(opts.caFile, 'utf8');
  const endpoint = opts.endpoint ?? env.AWS_ENDPOINT_URL_KMS ?? env.AWS_ENDPOINT_URL;
  if (endpoint !== undefined && !endpoint.startsWith('https://')) throw new Error(`aws_kms://${arn}: the endpoint ${endpoint} (from the environment) must be https://`);
  const client = new sdk.KMSClient({
    region: m[1] as string,
    ...(endpoint ? { endpoint } : {}),
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } } : {}),
    maxAttempts: 2,
    requestHandler: { requestTimeout: opts.timeoutMs, connectionTimeout: opts.timeoutMs, httpsAgent: new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) }) },
  });
  const context = { purpose: WRAP_CONTEXT };
  const named = (err: unknown): Error => new Error(`aws_kms://${arn}: ${(err as { name?: string }).name ?? 'error'}${(err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ? ` (HTTP ${(err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode})` : ''}`);
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
