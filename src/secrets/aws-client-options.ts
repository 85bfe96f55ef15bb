import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { BackendConfigError } from './backend-config-error.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * What every AWS SDK client keyswap makes is given: the endpoint (config, else the SDK's service variable, else
 * AWS_ENDPOINT_URL; https only, since credentials and secrets cross it), keys from the environment keyswap started
 * with (read once, before it is cleared) when there are any, else the SDK's own chain, strict TLS with `caFile`,
 * and per-call timeouts. `what` names the setting in errors.
 */
export async function awsClientOptions(what: string, o: { readonly region: string; readonly endpoint: string | null; readonly endpointVariable: string; readonly caFile: string | null; readonly timeoutMs: number }, env: Env): Promise<Record<string, unknown>> {
  const endpoint = o.endpoint ?? env[o.endpointVariable] ?? env.AWS_ENDPOINT_URL;
  if (endpoint !== undefined && !endpoint.startsWith('https://')) throw new BackendConfigError(`${what}: the endpoint ${endpoint} (from the environment) must be https://; keyswap's credentials and the secrets would cross it in clear`);
  let ca: string | undefined;
  if (o.caFile !== null) {
    try {
      ca = await readFile(o.caFile, 'utf8');
    } catch (err) {
      throw new BackendConfigError(`${what}: cannot read ca_file ${o.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const keys = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
    ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
    : undefined;
  return {
    region: o.region,
    ...(endpoint ? { endpoint } : {}),
    ...(keys ? { credentials: keys } : {}),
    maxAttempts: 2,
    requestHandler: { requestTimeout: o.timeoutMs, connectionTimeout: o.timeoutMs, httpsAgent: new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) }) },
  };
}

/** An AWS SDK error as keyswap says it: its name, and the HTTP status when there was one. */
export function awsErrorName(err: unknown): string {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return `${e.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}`;
}
