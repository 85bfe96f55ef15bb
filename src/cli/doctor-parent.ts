import type { Config } from '../config/index.js';
import { Dialer, ParentProxyError } from '../proxy/index.js';
import type { Secret } from '../secret.js';
import { openBackends, SecretNotFound } from '../secrets/index.js';
import type { CliIo } from './io.js';

/** A doctor finding: what was checked, and the command that fixes it when it failed. */
export interface Check { readonly ok: boolean; readonly what: string; readonly fix?: string }

/**
 * upstream.proxy: does the parent answer a CONNECT (to the first host a binding names, port 443) with 2xx, its
 * credentials fetched from the backend as keyswap serve would. Nothing is sent inside the tunnel.
 */
export async function parentProxyChecks(config: Config, io: CliIo): Promise<Check[]> {
  const parent = config.upstream.parent;
  if (parent === null) return [];
  const name = `parent proxy ${parent.host}:${parent.port}`;
  const host = config.secrets.flatMap((s) => s.bindings.map((b) => b.host)).find((h) => !h.includes('*') && new Dialer(config.upstream, null).parentFor(h) !== null);
  if (host === undefined) return [{ ok: true, what: `${name}: no bound host goes through it (upstream.no_proxy names them all)` }];
  const secrets = parent.credentialsSecret === null ? null : backendSource(config, io);
  try {
    const dial = config.upstream.resolve.get(`${host}:443`) ?? { host, port: 443 };
    const socket = await new Dialer(config.upstream, secrets).tcp({ host, port: 443 }, dial, config.upstream.connectTimeoutMs);
    socket.destroy();
    return [{ ok: true, what: `${name} answers CONNECT ${host}:443${parent.credentialsSecret === null ? '' : ` with the credentials in secret ${parent.credentialsSecret}`}` }];
  } catch (err) {
    if (err instanceof ParentProxyError && err.status === 407) return [{ ok: false, what: `${name} refused keyswap's credentials (407)`, fix: parent.credentialsSecret === null ? 'store user:password as a secret (keyswap secret set NAME) and set upstream.proxy_credentials: NAME' : `check the user:password stored as ${parent.credentialsSecret}: keyswap secret set ${parent.credentialsSecret}` }];
    if (err instanceof ParentProxyError && err.status !== 0) return [{ ok: false, what: `${name} answered CONNECT ${host}:443 with ${err.status}`, fix: 'ask its operator to allow CONNECT to the hosts your bindings name' }];
    if (err instanceof SecretNotFound) return [{ ok: false, what: `${name}: credentials secret ${parent.credentialsSecret} is not in the ${config.backend.type} backend`, fix: `keyswap secret set ${parent.credentialsSecret} (its value: user:password)` }];
    const code = (err as { code?: string }).code ?? (err instanceof ParentProxyError ? (err.cause as { code?: string } | undefined)?.code : undefined);
    return [{ ok: false, what: `${name} cannot be reached${code ? ` (${code})` : ''}`, fix: 'check upstream.proxy in the config, and that the proxy runs' }];
  } finally {
    await secrets?.close();
  }
}

/** The backend as a secret source, opened at the first fetch (the parent proxy's credentials). */
export function backendSource(config: Config, io: CliIo): { get(name: string): Promise<Secret>; fresh(name: string): Promise<Secret>; store(): Promise<'written' | 'pending'>; close(): Promise<void> } {
  let opened: ReturnType<typeof openBackends> | null = null;
  // Uncached: every read is the backend's value now.
  const get = async (name: string): Promise<Secret> => (await (opened ??= openBackends(config, { ...io.env }, () => {}))).fetch(name, { signal: AbortSignal.timeout(5000) });
  return {
    get,
    fresh: get,
    store: () => Promise.reject(new Error('doctor stores nothing')),
    close: async () => { await (await opened?.catch(() => null))?.close?.(); },
  };
}
