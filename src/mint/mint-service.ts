import type { MinterSpec } from '../config/index.js';
import { Secret } from '../secret.js';
import { MintFailed } from './failure.js';
import { signBearerJwt } from './jwt-bearer.js';
import { installationToken } from './github-app.js';
import { MintedCache, type Minted } from './minted-cache.js';
import { clientCredentialsGrant, refreshTokenGrant, serviceAccountGrant } from './oauth2.js';
import type { TokenTransport } from './transport.js';

/** What proxy/ audits as `token_exchange` (audit/events.ts): never the credential or any input. */
export interface TokenExchangeEvent {
  readonly secret_name: string;
  readonly minter: MinterSpec['kind'];
  readonly endpoint: string;
  readonly trigger: 'request' | 'refresh_ahead';
  readonly outcome: 'minted' | 'failed';
  readonly reason: string | null;
  readonly status: number | null;
  readonly expires_in_s: number | null;
  /** A rotated refresh token: stored back, not stored (write-back off, or rate-limited), or none was rotated (null). */
  readonly write_back: 'written' | 'disabled' | 'rate_limited' | null;
}

export interface MintDeps {
  readonly transport: TokenTransport;
  /** Resolves once the record is durable: a minted credential is used only after its exchange is on disk. */
  readonly audit: (event: TokenExchangeEvent) => Promise<void>;
  /** Durable write-through of a backend secret (a rotated refresh token); rejects when it cannot be stored. */
  readonly store: (name: string, value: Secret) => Promise<void>;
  readonly now?: () => number;
}

/**
 * The credentials keyswap mints: cached per inputs (minted-cache.ts), each endpoint exchange audited before its
 * result is used, every failure a MintFailed the pipeline turns into a 503 with nothing sent.
 */
export class MintService {
  readonly #cache: MintedCache;
  readonly #deps: MintDeps;
  readonly #now: () => number;
  /** When each refresh token was last stored back: write_back_min_interval_seconds floors the gap. */
  readonly #lastWriteBack = new Map<string, number>();

  constructor(deps: MintDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#cache = new MintedCache({ now: this.#now });
  }

  /** `inputs` holds the minter's backend secrets by name (config/minterInputs). */
  credential(secretName: string, spec: MinterSpec, inputs: ReadonlyMap<string, Secret>): Promise<Secret> {
    const input = (name: string): string => inputs.get(name)?.reveal() ?? '';
    // A refresh token is state, not identity: one the provider rotated (and keyswap stored back) keeps the key.
    const identity = [...inputs.keys()].filter((n) => spec.kind !== 'oauth2_refresh' || n !== spec.refreshTokenSecret).sort();
    const key = this.#cache.keyOf([secretName, JSON.stringify(spec), ...identity.map(input)]);
    return this.#cache.get(key, secretName, (trigger) => this.#mint(secretName, spec, input, trigger));
  }

  /** The credentials minted for this secret that are still held: scrubbed from its destinations' responses. */
  live(secretName: string): Secret[] {
    return this.#cache.live(secretName);
  }

  clear(): void {
    this.#cache.clear();
  }

  async #mint(secretName: string, spec: MinterSpec, input: (name: string) => string, trigger: 'request' | 'refresh_ahead'): Promise<Minted & { readonly useByMs: number }> {
    const startMs = this.#now();
    switch (spec.kind) {
      case 'jwt_bearer': {
        // Signed here, no exchange: nothing to audit beyond the request's own inject_decision.
        const { jwt, expiresAtMs } = await signBearerJwt(spec, input(spec.signingKeySecret), startMs);
        const lifetime = expiresAtMs - startMs;
        return { value: new Secret(jwt), expiresAtMs, useByMs: expiresAtMs - Math.max(10_000, Math.min(60_000, lifetime / 5)) };
      }
      case 'oauth2_client_credentials':
        return this.#exchange(secretName, spec, new URL(spec.tokenUrl).host, trigger, async () => {
          const grant = await clientCredentialsGrant(spec, input(spec.clientIdSecret), input(spec.clientSecretSecret), this.#deps.transport);
          const lifetimeMs = grant.expiresInS === null ? spec.maxMs : Math.min(grant.expiresInS * 1000 - spec.safetyMs, spec.maxMs);
          return { value: new Secret(grant.accessToken), expiresAtMs: startMs + (grant.expiresInS ?? spec.maxMs / 1000) * 1000, useByMs: startMs + lifetimeMs };
        });
      case 'oauth2_refresh':
        return this.#exchange(secretName, spec, new URL(spec.tokenUrl).host, trigger, async (writeBack) => {
          const current = input(spec.refreshTokenSecret);
          const grant = await refreshTokenGrant(spec, input(spec.clientIdSecret), input(spec.clientSecretSecret), current, this.#deps.transport);
          if (grant.refreshToken !== null && grant.refreshToken !== current) writeBack.set(await this.#writeBack(secretName, spec, grant.refreshToken));
          const lifetimeMs = grant.expiresInS === null ? spec.maxMs : Math.min(grant.expiresInS * 1000 - spec.safetyMs, spec.maxMs);
          return { value: new Secret(grant.accessToken), expiresAtMs: startMs + (grant.expiresInS ?? spec.maxMs / 1000) * 1000, useByMs: startMs + lifetimeMs };
        });
      case 'google_service_account':
        return this.#exchange(secretName, spec, new URL(spec.tokenUrl).host, trigger, async () => {
          const grant = await serviceAccountGrant(spec, input(spec.keySecret), this.#deps.transport, startMs);
          const lifetimeMs = grant.expiresInS === null ? spec.maxMs : Math.min(grant.expiresInS * 1000 - spec.safetyMs, spec.maxMs);
          return { value: new Secret(grant.accessToken), expiresAtMs: startMs + (grant.expiresInS ?? spec.maxMs / 1000) * 1000, useByMs: startMs + lifetimeMs };
        });
      case 'github_app':
        return this.#exchange(secretName, spec, new URL(spec.apiBaseUrl).host, trigger, async () => {
          const { token, expiresAtMs } = await installationToken(spec, input(spec.privateKeySecret), this.#deps.transport, startMs);
          // GitHub's tokens live an hour; stop five minutes short, so a long request never carries an expired one.
          return { value: new Secret(token), expiresAtMs, useByMs: Math.min(expiresAtMs - 300_000, startMs + 3_600_000) };
        });
    }
  }

  /**
   * Stores a rotated refresh token before the access token that came with it is used: a restart, or the next
   * exchange, must find the new one, since most providers revoke the old one at once. Within the minimum interval
   * since the last write (a provider rotating on every exchange), or with write-back off, it is not stored.
   */
  async #writeBack(secretName: string, spec: Extract<MinterSpec, { kind: 'oauth2_refresh' }>, refreshToken: string): Promise<'written' | 'disabled' | 'rate_limited'> {
    if (!spec.writeBack) return 'disabled';
    const last = this.#lastWriteBack.get(secretName);
    if (last !== undefined && this.#now() - last < spec.writeBackMinIntervalMs) return 'rate_limited';
    try {
      await this.#deps.store(spec.refreshTokenSecret, new Secret(refreshToken));
    } catch (err) {
      throw new MintFailed('write_back_failed', null, { cause: err });
    }
    this.#lastWriteBack.set(secretName, this.#now());
    return 'written';
  }

  async #exchange<T extends Minted & { readonly useByMs: number }>(
    secretName: string, spec: MinterSpec, endpoint: string, trigger: 'request' | 'refresh_ahead',
    run: (writeBack: { set(v: TokenExchangeEvent['write_back']): void }) => Promise<T>,
  ): Promise<T> {
    const base = { secret_name: secretName, minter: spec.kind, endpoint, trigger } as const;
    let writeBack: TokenExchangeEvent['write_back'] = null;
    let minted: T;
    try {
      minted = await run({ set: (v) => { writeBack = v; } });
    } catch (err) {
      const failed = err instanceof MintFailed ? err : new MintFailed('bad_response', null, { cause: err });
      await this.#deps.audit({ ...base, outcome: 'failed', reason: failed.reason, status: failed.status, expires_in_s: null, write_back: writeBack }).catch(() => {});
      throw failed;
    }
    await this.#deps.audit({ ...base, outcome: 'minted', reason: null, status: null, expires_in_s: Math.round((minted.expiresAtMs - this.#now()) / 1000), write_back: writeBack });
    return minted;
  }
}
