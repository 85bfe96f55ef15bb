import type { Dispatcher } from 'undici';
import type { VaultConnection } from '../config/index.js';
import { readCredentialFile } from './credential-file.js';
import { BackendUnavailable } from './errors.js';
import { backendDispatcher, jsonCall, type JsonAnswer } from './json-http.js';

export type VaultAnswer = JsonAnswer;

/** Vault refused the credentials themselves (a login or token lookup answered 400/403): a user mistake at start. */
export class VaultAuthRefused extends Error {
  override readonly name = 'VaultAuthRefused';
}

interface Lease {
  readonly token: string;
  /** Renew (or log in again) from then on. */
  readonly renewAtMs: number;
  /** Past this, the token is no longer tried. null: it never expires (a root or periodic-less token with ttl 0). */
  readonly expiresAtMs: number | null;
  readonly renewable: boolean;
}

/**
 * HashiCorp Vault / OpenBao over its HTTP API: one authenticated session for the backend and for transit. The
 * token comes from `auth` (a token file, an AppRole login, a Kubernetes login); it is renewed at two thirds of its
 * lease and replaced by a fresh login (or a re-read of the token file, which Vault Agent rewrites) when renewal
 * fails or the lease runs out. A request answered 403 logs in once more and tries again, so a rotated token is
 * followed; a second 403 is the policy's answer and fails closed with it. Errors carry Vault's own words (which
 * never hold secret data) and the status, never a token or a value.
 */
export class VaultClient {
  readonly #conn: VaultConnection;
  readonly #dispatcher: Dispatcher;
  #lease: Lease | null = null;
  #login: Promise<Lease> | null = null;
  #renewing: Promise<void> | null = null;

  private constructor(conn: VaultConnection, dispatcher: Dispatcher) {
    this.#conn = conn;
    this.#dispatcher = dispatcher;
  }

  static async open(conn: VaultConnection, what: string): Promise<VaultClient> {
    return new VaultClient(conn, await backendDispatcher(conn.caFile, what));
  }

  /**
   * Logs in now: refused credentials throw VaultAuthRefused (keyswap does not start); an unreachable Vault throws
   * BackendUnavailable (the caller decides; requests fail closed until it answers).
   */
  async authenticate(): Promise<void> {
    await this.#session(true);
  }

  /** An authenticated call; a 403 is retried once after a fresh login. Resolves with any other status for the caller to read. */
  async call(method: 'GET' | 'POST', apiPath: string, body: unknown, signal: AbortSignal): Promise<VaultAnswer> {
    const lease = await this.#session(false);
    const first = await this.#send(method, apiPath, body, lease.token, signal);
    if (first.status !== 403) return first;
    const fresh = await this.#session(true);
    return this.#send(method, apiPath, body, fresh.token, signal);
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  /** The current lease, renewed or replaced when due. `force`: a new login whatever the lease says. */
  async #session(force: boolean): Promise<Lease> {
    const lease = this.#lease;
    const now = Date.now();
    if (!force && lease !== null && (lease.expiresAtMs === null || now < lease.expiresAtMs)) {
      if (now >= lease.renewAtMs) void this.#renew(lease);
      return lease;
    }
    this.#login ??= this.#logIn().then(
      (l) => {
        this.#lease = l;
        this.#login = null;
        return l;
      },
      (err: unknown) => {
        this.#login = null;
        throw err;
      },
    );
    return this.#login;
  }

  /** In the background of a request: the request goes on with the still-valid token. */
  #renew(lease: Lease): Promise<void> {
    this.#renewing ??= (async () => {
      try {
        if (lease.renewable) {
          const r = await this.#send('POST', 'auth/token/renew-self', {}, lease.token, AbortSignal.timeout(this.#conn.timeoutMs));
          const renewed = r.status === 200 ? leaseOf(r.body, lease.token) : null;
          // A lease that no longer grows has reached its max TTL: only a new login gives a longer one.
          if (renewed !== null && renewed.expiresAtMs !== null && renewed.expiresAtMs - Date.now() > 10_000) {
            if (this.#lease === lease) this.#lease = renewed;
            return;
          }
        }
        if (this.#lease === lease) await this.#session(true);
      } catch {
        // The token still works until it expires; the next request past renewAtMs tries again.
      } finally {
        this.#renewing = null;
      }
    })();
    return this.#renewing;
  }

  async #logIn(): Promise<Lease> {
    const auth = this.#conn.auth;
    const signal = AbortSignal.timeout(this.#conn.timeoutMs);
    if (auth.method === 'token') {
      const token = await this.#credential(auth.tokenFile, true);
      const r = await this.#send('GET', 'auth/token/lookup-self', undefined, token, signal);
      if (r.status === 403 || r.status === 400) throw new VaultAuthRefused(`the token in ${auth.tokenFile} was refused (${r.status} ${vaultErrors(r.body)})`);
      if (r.status !== 200) throw unavailable(r, 'token lookup');
      return tokenLookupLease(r.body, token);
    }
    const loginBody = auth.method === 'approle'
      ? { role_id: await this.#credential(auth.roleIdFile, false), secret_id: await this.#credential(auth.secretIdFile, true) }
      : { role: auth.role, jwt: await this.#credential(auth.jwtFile, false) };
    const r = await this.#send('POST', `auth/${auth.mount}/login`, loginBody, null, signal);
    if (r.status === 400 || r.status === 403) throw new VaultAuthRefused(`${auth.method} login at auth/${auth.mount} was refused (${r.status} ${vaultErrors(r.body)})`);
    if (r.status !== 200) throw unavailable(r, `${auth.method} login`);
    const lease = leaseOf(r.body, null);
    if (lease === null) throw new BackendUnavailable('vault', `${auth.method} login answered without auth.client_token`);
    return lease;
  }

  async #credential(file: string, isPrivate: boolean): Promise<string> {
    const read = await readCredentialFile(file, { private: isPrivate });
    if ('problem' in read) throw new VaultAuthRefused(read.problem);
    return read.value;
  }

  #send(method: string, apiPath: string, body: unknown, token: string | null, signal: AbortSignal): Promise<VaultAnswer> {
    const headers: Record<string, string> = {};
    if (token !== null) headers['x-vault-token'] = token;
    if (this.#conn.namespace !== null) headers['x-vault-namespace'] = this.#conn.namespace;
    return jsonCall('vault', this.#dispatcher, new URL(`v1/${apiPath}`, this.#conn.address), { method, headers, body, signal, timeoutMs: this.#conn.timeoutMs });
  }
}

/** Vault's `errors: [...]`, flattened to one short printable line. */
export function vaultErrors(body: unknown): string {
  const errors = (body as { errors?: unknown } | null)?.errors;
  const text = Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string').join('; ') : '';
  const line = text.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  return line === '' ? 'no reason given' : line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

export function unavailable(r: VaultAnswer, what: string): BackendUnavailable {
  return new BackendUnavailable('vault', `${what} answered ${r.status} (${vaultErrors(r.body)})`);
}

/** `auth: { client_token, lease_duration, renewable }` from a login or renew-self. */
function leaseOf(body: unknown, token: string | null): Lease | null {
  const auth = (body as { auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } } | null)?.auth;
  const t = typeof auth?.client_token === 'string' && auth.client_token !== '' ? auth.client_token : token;
  if (t === null || auth === undefined) return null;
  const seconds = typeof auth.lease_duration === 'number' ? auth.lease_duration : 0;
  return leaseFor(t, seconds, auth.renewable === true);
}

/** lookup-self's `data: { ttl, renewable }`: a token file's token. */
function tokenLookupLease(body: unknown, token: string): Lease {
  const data = (body as { data?: { ttl?: unknown; renewable?: unknown } } | null)?.data;
  return leaseFor(token, typeof data?.ttl === 'number' ? data.ttl : 0, data?.renewable === true);
}

function leaseFor(token: string, seconds: number, renewable: boolean): Lease {
  const now = Date.now();
  if (seconds <= 0) return { token, renewAtMs: Number.POSITIVE_INFINITY, expiresAtMs: null, renewable: false };
  return { token, renewAtMs: now + (seconds * 1000 * 2) / 3, expiresAtMs: now + seconds * 1000, renewable };
}

