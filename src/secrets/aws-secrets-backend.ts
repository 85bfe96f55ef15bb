import type { BackendSpec } from '../config/index.js';
import { awsClientOptions } from './aws-client-options.js';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendRefused, BackendUnavailable, SecretNotFound } from './errors.js';
import { pickJsonField } from './json-field.js';
import type { Env } from './open-backend.js';
import { Secret } from './secret.js';

type AwsSpec = Extract<BackendSpec, { type: 'aws_secrets_manager' }>;
type Sdk = typeof import('@aws-sdk/client-secrets-manager');

/** Errors whose meaning is "this name is not there"; "you may not have it"; the rest mean AWS cannot answer now. */
const NOT_FOUND = new Set(['ResourceNotFoundException']);
const REFUSALS = new Set(['AccessDeniedException', 'DecryptionFailure', 'InvalidRequestException', 'UnrecognizedClientException', 'InvalidSignatureException']);

/**
 * AWS Secrets Manager through the official SDK (loaded only when configured). Secret NAME is the secret id
 * `<prefix>NAME` (or the secret's own `backend.path`: a name or an ARN), stage AWSCURRENT; a `field` reads one key
 * of a JSON SecretString. Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN from the
 * environment keyswap started with (read once, then cleared from its environment block), else the SDK's standard
 * chain (shared config and credentials files, web identity for IRSA, ECS, instance metadata). Errors carry the
 * AWS error name and the secret id, never a value or a credential.
 */
export class AwsSecretsBackend implements SecretsBackend {
  readonly type = 'aws_secrets_manager';
  readonly #spec: AwsSpec;
  readonly #sdk: Sdk;
  readonly #client: InstanceType<Sdk['SecretsManagerClient']>;

  private constructor(spec: AwsSpec, sdk: Sdk, client: InstanceType<Sdk['SecretsManagerClient']>) {
    this.#spec = spec;
    this.#sdk = sdk;
    this.#client = client;
  }

  static async open(spec: AwsSpec, env: Env): Promise<AwsSecretsBackend> {
    const sdk = await import('@aws-sdk/client-secrets-manager');
    const region = spec.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (region === undefined || region === '') throw new BackendConfigError('aws_secrets_manager backend: no region; set config.region (or AWS_REGION in keyswap\'s environment)');
    const client = new sdk.SecretsManagerClient(await awsClientOptions('aws_secrets_manager backend', { region, endpoint: spec.endpoint, endpointVariable: 'AWS_ENDPOINT_URL_SECRETS_MANAGER', caFile: spec.caFile, timeoutMs: spec.timeoutMs }, env));
    return new AwsSecretsBackend(spec, sdk, client);
  }

  async fetch(name: string, ctx: FetchContext): Promise<Secret> {
    const id = ctx.location?.path ?? `${this.#spec.prefix}${name}`;
    const field = ctx.location?.field ?? this.#spec.field;
    let out;
    try {
      out = await this.#client.send(new this.#sdk.GetSecretValueCommand({ SecretId: id, VersionStage: 'AWSCURRENT' }), { abortSignal: ctx.signal });
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      const code = e.name ?? 'Error';
      if (NOT_FOUND.has(code)) throw new SecretNotFound(name);
      const status = e.$metadata?.httpStatusCode;
      // The SDK's network failures are plain Errors: their code says what happened (ECONNREFUSED, a TLS error).
      const net = (err as { code?: string; cause?: { code?: string } }).code ?? (err as { cause?: { code?: string } }).cause?.code;
      const what = `GetSecretValue ${id} failed: ${code === 'Error' && net ? net : code}${status ? ` (HTTP ${status})` : ''}${HINTS[code] ?? ''}`;
      throw REFUSALS.has(code) ? new BackendRefused('aws_secrets_manager', what) : new BackendUnavailable('aws_secrets_manager', what);
    }
    if (typeof out.SecretString !== 'string' || out.SecretString === '') {
      throw new BackendRefused('aws_secrets_manager', `${id} holds no SecretString (a binary secret); keyswap reads text secrets`);
    }
    return new Secret(field === null ? out.SecretString : pickJsonField('aws_secrets_manager', out.SecretString, field, id));
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

const HINTS: Record<string, string> = {
  AccessDeniedException: ': the credentials\' IAM policy does not allow secretsmanager:GetSecretValue on it',
  UnrecognizedClientException: ': the access key is not valid',
  InvalidSignatureException: ': the secret access key does not match the access key id',
  ExpiredTokenException: ': the session token has expired',
  CredentialsProviderError: ': no credentials found (environment, shared files, web identity, instance role)',
  DecryptionFailure: ': the secret\'s KMS key cannot be used by these credentials',
};
