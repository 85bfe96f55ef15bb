import type { Report } from './report.js';
import type { VaultAuth, VaultConnection } from './types.js';
import type { FieldPath } from './yaml-source.js';

const KUBERNETES_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/;

/** A backend's address may be plain http only on this host: a token sent in clear across a network is given away. */
export function httpsOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.test(url.hostname));
}

/** What each login method needs, and may have. */
const AUTH_KEYS: Record<VaultAuth['method'], { readonly required: readonly string[]; readonly optional: readonly string[] }> = {
  token: { required: ['token_file'], optional: [] },
  approle: { required: ['role_id_file', 'secret_id_file'], optional: ['mount'] },
  kubernetes: { required: ['role'], optional: ['mount', 'jwt_file'] },
};

interface RawConnection {
  readonly address: string;
  readonly namespace?: string | undefined;
  readonly ca_file?: string | undefined;
  readonly timeout_seconds?: number | undefined;
  readonly auth: { readonly method: VaultAuth['method'] } & Readonly<Record<string, string | undefined>>;
}

/**
 * `address`, `namespace`, `ca_file`, `timeout_seconds` and `auth`, shared by the vault backend and transit-wrapped
 * store keys. https only, except to a loopback address (a dev server, or Vault Agent's listener on the same host):
 * a token sent in clear across a network is a token given away.
 */
export function compileVaultConnection(c: RawConnection, p: FieldPath, abs: (f: string) => string, err: Report): VaultConnection | null {
  const url = new URL(c.address);
  let ok = true;
  if (!httpsOrLoopback(url)) {
    err([...p, 'address'], `'${c.address}' must be https:// (plain http only to a loopback address, such as Vault Agent's listener)`);
    ok = false;
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || (url.pathname !== '/' && url.pathname !== '')) {
    err([...p, 'address'], `'${c.address}' must be an origin such as https://vault.internal:8200 (no path, query or credentials)`);
    ok = false;
  }
  const method = c.auth.method;
  const keys = AUTH_KEYS[method];
  for (const k of keys.required) {
    if (c.auth[k] === undefined) {
      err([...p, 'auth', k], `is required with method: ${method}`, true);
      ok = false;
    }
  }
  for (const k of Object.keys(c.auth)) {
    if (k !== 'method' && !keys.required.includes(k) && !keys.optional.includes(k)) {
      err([...p, 'auth', k], `does not apply to method: ${method} (it takes ${[...keys.required, ...keys.optional].join(', ')})`, true);
      ok = false;
    }
  }
  if (!ok) return null;
  const a = c.auth as Record<string, string>;
  const auth: VaultAuth = method === 'token'
    ? { method, tokenFile: abs(a.token_file as string) }
    : method === 'approle'
      ? { method, mount: a.mount ?? 'approle', roleIdFile: abs(a.role_id_file as string), secretIdFile: abs(a.secret_id_file as string) }
      : { method, mount: a.mount ?? 'kubernetes', role: a.role as string, jwtFile: abs(a.jwt_file ?? KUBERNETES_JWT_FILE) };
  return {
    address: url.origin + '/',
    namespace: c.namespace ?? null,
    caFile: c.ca_file === undefined ? null : abs(c.ca_file),
    timeoutMs: (c.timeout_seconds ?? 10) * 1000,
    auth,
  };
}
