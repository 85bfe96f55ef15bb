import { readFile } from 'node:fs/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable } from './errors.js';

export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * The connection pool an HTTP backend (Vault, 1Password Connect) talks through: strict TLS against the system roots
 * or `caFile`, and never a proxy, so keyswap's own backend calls do not loop through an agent-facing listener.
 */
export async function backendDispatcher(caFile: string | null, what: string): Promise<Dispatcher> {
  let ca: string | undefined;
  if (caFile !== null) {
    try {
      ca = await readFile(caFile, 'utf8');
    } catch (err) {
      throw new BackendConfigError(`${what}: cannot read ca_file ${caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return new Agent({ connect: { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: true }, connections: 8 });
}

/**
 * One JSON call, bounded by `timeoutMs` and the caller's signal, never following a redirect. Any answer resolves
 * (the caller reads the status); no answer rejects with BackendUnavailable naming the address and the error code.
 */
export async function jsonCall(backend: string, dispatcher: Dispatcher, url: URL, opts: { method: string; headers: Record<string, string>; body?: unknown; signal: AbortSignal; timeoutMs: number }): Promise<JsonAnswer> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await request(url, {
      method: opts.method as Dispatcher.HttpMethod,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      dispatcher,
      signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]),
    });
    const text = await res.body.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: res.statusCode, body: parsed };
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).name;
    throw new BackendUnavailable(backend, `${url.origin} cannot be reached (${code})`);
  }
}
