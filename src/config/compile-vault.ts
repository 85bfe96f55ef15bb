import type { Report } from './report.js';
import type { VaultAuth, VaultConnection } from './types.js';
import type { FieldPath } from './yaml-source.js';

const KUBERNETES_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/**
 * A backend keyswap sends a credential to is reached over verified TLS, loopback included: plain http to a local
 * port hands the token to whatever holds that port (another user's process, while the real listener restarts).
 */
export const HTTPS_ONLY = 'must be https:// (keyswap sends its credential there; over plain http, even on loopback, whatever holds the port gets it)';

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
 * store keys. https only (HTTPS_ONLY).
 */
export function compileVaultConnection(c: RawConnection, p: FieldPath, abs: (f: string) => string, err: Report): VaultConnection | null {
  const url = new URL(c.address);
  let ok = true;
  if (url.protocol !== 'https:') {
    err([...p, 'address'], `'${c.address}' ${HTTPS_ONLY}`);
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
