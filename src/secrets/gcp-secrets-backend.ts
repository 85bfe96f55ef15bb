import type { BackendSpec } from '../config/index.js';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendRefused, BackendUnavailable, SecretNotFound } from './errors.js';
import { googleClientOptions, googleStatus } from './google-error.js';
import { pickJsonField } from './json-field.js';
import { Secret } from './secret.js';

type GcpSpec = Extract<BackendSpec, { type: 'gcp_secret_manager' }>;
type Client = InstanceType<typeof import('@google-cloud/secret-manager').SecretManagerServiceClient>;

/** The answers that mean "no" for this name (a policy, a disabled version): never bridged, never backing off the rest. */
const REFUSED = new Set(['PERMISSION_DENIED', 'FAILED_PRECONDITION', 'UNAUTHENTICATED']);

/**
 * Google Cloud Secret Manager through the official client (loaded only when configured), over its HTTP/JSON
 * transport: secret NAME is `projects/<project>/secrets/<prefix>NAME/versions/<version>` (or the secret's own
 * `backend.path`: a secret id or a full resource name), version `latest` by default; a `field` reads one key of a
 * JSON payload. Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity,
 * the metadata server). Errors carry the status name and the resource, never a value.
 */
export class GcpSecretsBackend implements SecretsBackend {
  readonly type = 'gcp_secret_manager';
  readonly #spec: GcpSpec;
  readonly #client: Client;

  private constructor(spec: GcpSpec, client: Client) {
    this.#spec = spec;
    this.#client = client;
  }

  static async open(spec: GcpSpec): Promise<GcpSecretsBackend> {
    const { SecretManagerServiceClient } = await import('@google-cloud/secret-manager');
    const client = new SecretManagerServiceClient(googleClientOptions(spec.endpoint));
    return new GcpSecretsBackend(spec, client);
  }

  async fetch(name: string, ctx: FetchContext): Promise<Secret> {
    const given = ctx.location?.path ?? `${this.#spec.prefix}${name}`;
    const resource = given.startsWith('projects/') ? (given.includes('/versions/') ? given : `${given}/versions/${this.#spec.version}`) : `projects/${this.#spec.project}/secrets/${given}/versions/${this.#spec.version}`;
    const field = ctx.location?.field ?? this.#spec.field;
    let data: Uint8Array | string | null | undefined;
    try {
      const [version] = await this.#client.accessSecretVersion({ name: resource }, { timeout: this.#spec.timeoutMs });
      data = version.payload?.data;
    } catch (err) {
      const { status } = googleStatus(err);
      if (status === 'NOT_FOUND') throw new SecretNotFound(name);
      const what = `accessing ${resource} failed: ${status}${status === 'PERMISSION_DENIED' ? ': the credentials may not access it (roles/secretmanager.secretAccessor)' : status === 'UNAUTHENTICATED' ? ': no valid credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity)' : ''}`;
      throw REFUSED.has(status) ? new BackendRefused('gcp_secret_manager', what) : new BackendUnavailable('gcp_secret_manager', what);
    }
    const text = data === null || data === undefined ? '' : typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
    if (text === '') throw new SecretNotFound(name);
    return new Secret(field === null ? text : pickJsonField('gcp_secret_manager', text, field, resource));
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
