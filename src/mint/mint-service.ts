import { createHmac, randomBytes } from 'node:crypto';
import type { MinterSpec } from '../config/index.js';
import { Secret } from '../secret.js';
import { MintFailed } from './failure.js';
import { signBearerJwt } from './jwt-bearer.js';
import { installationToken } from './github-app.js';
import { MIN_LIFETIME_MS, MintedCache, REFRESH_AHEAD_MS, type Minted } from './minted-cache.js';
import type { MintSharing } from './sharing.js';
import { destinationOf, SentLedger, type SentValue } from './sent-ledger.js';
import { clientCredentialsGrant, refreshTokenGrant, serviceAccountGrant } from './oauth2.js';
import type { TokenTransport } from './transport.js';

/** What proxy/ audits as `token_exchange` (audit/events.ts): never the credential or any input. */
export interface TokenExchangeEvent {
  readonly secret_name: string;
  readonly minter: MinterSpec['kind'];
  readonly endpoint: string;
  readonly trigger: 'request' | 'refresh_ahead';
  /** `started` is durable before the inputs leave for the endpoint; `minted` before the credential is used. */
  readonly outcome: 'started' | 'minted' | 'failed';
  readonly reason: string | null;
  readonly status: number | null;
  readonly expires_in_s: number | null;
  /** A rotated refresh token stored back, kept to be stored (the backend could not be written yet), or none (null). */
  readonly write_back: 'written' | 'pending' | null;
}

export interface MintDeps {
  readonly transport: TokenTransport;
  /** Resolves once the record is durable: inputs leave, and a credential is used, only after their record. */
  readonly audit: (event: TokenExchangeEvent) => Promise<void>;
  /** The backend through the secret cache: the refresh token is read at exchange time; a rotated one is stored. */
  readonly secrets: { get(name: string): Promise<Secret>; fresh(name: string): Promise<Secret>; store(name: string, value: Secret): Promise<'written' | 'pending'> };
  readonly now?: () => number;
  /** Credentials the previous snapshot's service issued that are still valid (a reload keeps scrubbing them). */
  readonly inherit?: MintService;
  /** shared_state: one exchange among replicas, its result and rotated refresh tokens shared (else the inherited one's). */
  readonly sharing?: MintSharing;
}

/** Bounded: a refresh token is spent at most once per exchange, and the oldest are the least likely to come back. */
class SpentTokens {
  readonly #key = randomBytes(32);
  readonly #macs = new Set<string>();

  add(token: string): void {
    this.#macs.add(this.#mac(token));
    if (this.#macs.size > 1024) this.#macs.delete(this.#macs.values().next().value as string);
  }

  has(token: string): boolean {
    return this.#macs.has(this.#mac(token));
  }

  #mac(token: string): string {
    return createHmac('sha256', this.#key).update(token).digest('base64url');
  }
}

/** How long a credential whose issuer gave no expiry is still looked for in responses. */
const UNKNOWN_LIFETIME_MS = 24 * 3600_000;
/**
 * Each remembered credential is a needle in every response of its secret's destinations, rebuilt when the list
 * changes: a credential minted per request (one too short-lived to cache) must not grow that set without bound.
 */
const MAX_ISSUED_PER_SECRET = 64;

/**
 * The credentials keyswap mints: cached per inputs (minted-cache.ts); each endpoint exchange recorded durably
 * before the inputs are sent and again before the result is used; every failure a MintFailed the pipeline turns
 * into a 503 with nothing sent. Every credential it issued is remembered until it expires, apart
 * from the cache, so responses are scrubbed of it whether or not it is still served.
 */
export class MintService {
  readonly #cache: MintedCache;
  readonly #deps: MintDeps;
  readonly #now: () => number;
  readonly #issued = new Map<string, { readonly value: Secret; readonly untilMs: number }[]>();
  readonly #sent: SentLedger;
  readonly #sharing: MintSharing | undefined;
  /** Refresh tokens this process spent (the provider rotated them away), by an HMAC of this process's own. */
  readonly #spent: SpentTokens;

  constructor(deps: MintDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#sharing = deps.sharing ?? (deps.inherit === undefined ? undefined : deps.inherit.#sharing);
    this.#spent = deps.inherit === undefined ? new SpentTokens() : deps.inherit.#spent;
    this.#cache = new MintedCache({ now: this.#now });
    this.#sent = new SentLedger(this.#now, deps.inherit === undefined ? undefined : deps.inherit.#sent);
    if (deps.inherit !== undefined) for (const [name, list] of deps.inherit.#issued) this.#issued.set(name, [...list]);
  }

  /**
   * What keyswap's token requests carried to `destination` (`https://host:port`) that may still be valid: client
   * secrets as encoded, assertions, App JWTs, refresh tokens. Scrubbed from that destination's responses.
   */
  sentTo(destination: string): readonly SentValue[] {
    return this.#sent.live(destination);
  }

  /** `inputs` holds the minter's backend secrets by name (config/minterInputs). */
  credential(secretName: string, spec: MinterSpec, inputs: ReadonlyMap<string, Secret>): Promise<Secret> {
    const input = (name: string): string => inputs.get(name)?.reveal() ?? '';
    // A refresh token is state, not identity: one the provider rotated (and keyswap stored back) keeps the key.
    const identity = [...inputs.keys()].filter((n) => spec.kind !== 'oauth2_refresh' || n !== spec.refreshTokenSecret).sort();
    const parts = [secretName, JSON.stringify(spec), ...identity.map(input)];
    const key = this.#cache.keyOf(parts);
    return this.#cache.get(key, (trigger) => {
      const mint = (): Promise<Minted & { readonly useByMs: number }> => this.#mint(secretName, spec, input, trigger);
      // A JWT keyswap signs itself costs no exchange: every replica signs its own.
      if (this.#sharing === undefined || spec.kind === 'jwt_bearer') return mint();
      // A background renewal needs one fresher than the one it renews; a request, one that outlives it.
      const needMs = trigger === 'refresh_ahead' ? REFRESH_AHEAD_MS + 1 : MIN_LIFETIME_MS;
      return this.#sharing.once(parts, needMs, spec.kind === 'oauth2_refresh', mint).then(({ minted, peer }) => (peer ? this.#issue(secretName, minted) : minted));
    });
  }

  /**
   * Resolves once none of this service's exchanges is under way. An exchange cut off by exit may have spent a
   * refresh token whose successor then never lands anywhere: stop waits for it.
   */
  settled(): Promise<void> {
    return this.#cache.settled();
  }

  /** Every credential issued for this secret that may still be valid: scrubbed from its destinations' responses. */
  live(secretName: string): Secret[] {
    if (!this.#issued.has(secretName)) return []; // every request of a destination asks, minting secrets or not
    const now = this.#now();
    const list = (this.#issued.get(secretName) ?? []).filter((e) => now < e.untilMs);
    if (list.length === 0) this.#issued.delete(secretName);
    else this.#issued.set(secretName, list);
    return list.map((e) => e.value);
  }

  #remember(secretName: string, value: Secret, untilMs: number): void {
    const list = this.#issued.get(secretName) ?? [];
    list.push({ value, untilMs });
    // Bounded: past the cap the one that expires first goes, which is the one least likely still in use.
    if (list.length > MAX_ISSUED_PER_SECRET) list.sort((a, b) => b.untilMs - a.untilMs).pop();
    this.#issued.set(secretName, list);
  }

  async #mint(secretName: string, spec: MinterSpec, input: (name: string) => string, trigger: 'request' | 'refresh_ahead'): Promise<Minted & { readonly useByMs: number }> {
    const startMs = this.#now();
    switch (spec.kind) {
      case 'jwt_bearer': {
        // Signed here, no exchange: nothing to audit beyond the request's own inject_decision.
        const { jwt, expiresAtMs } = await signBearerJwt(spec, input(spec.signingKeySecret), startMs);
        const lifetime = expiresAtMs - startMs;
        return this.#issue(secretName, { value: new Secret(jwt), expiresAtMs, useByMs: expiresAtMs - Math.max(10_000, Math.min(60_000, lifetime / 5)) });
      }
      case 'oauth2_client_credentials':
        return this.#exchange(secretName, spec, new URL(spec.tokenUrl).host, trigger, async (transport) => {
          const grant = await clientCredentialsGrant(spec, input(spec.clientIdSecret), input(spec.clientSecretSecret), transport);
          const lifetimeMs = grant.expiresInS === null ? spec.maxMs : Math.min(grant.expiresInS * 1000 - spec.safetyMs, spec.maxMs);
          return { value: new Secret(grant.accessToken), expiresAtMs: startMs + (grant.expiresInS ?? spec.maxMs / 1000) * 1000, useByMs: startMs + lifetimeMs, expiryKnown: grant.expiresInS !== null };
        });
      case 'oauth2_refresh': {
        // Read now, not with the request that triggered this: a write-back since then has the current one. With
        // shared_state, read under the mint lease past the cache (another replica may have written one back since)
        // and weighed against what the replicas handed on in Redis.
        const read = this.#sharing === undefined ? this.#deps.secrets.get(spec.refreshTokenSecret) : this.#deps.secrets.fresh(spec.refreshTokenSecret);
        const stored = (await read.catch((err: unknown) => {
          throw new MintFailed('input_unavailable', null, { cause: err });
        })).reveal();
        const current = this.#sharing === undefined ? stored : await this.#sharing.currentRefreshToken(spec.refreshTokenSecret, stored);
        return this.#exchange(secretName, spec, new URL(spec.tokenUrl).host, trigger, async (transport, writeBack) => {
          // One this process already spent is never sent again, whatever the backend or Redis say: a provider with
          // reuse detection would revoke the whole grant. Refused, audited, nothing sent.
          if (this.#spent.has(current)) throw new MintFailed('refresh_token_spent', null);
          const grant = await refreshTokenGrant(spec, input(spec.clientIdSecret), spec.clientSecretSecret === null ? '' : input(spec.clientSecretSecret), current, transport);
          if (grant.refreshToken !== null && grant.refreshToken !== current) {
            this.#spent.add(current);
            // The next exchange sends it: scrubbed from the endpoint's responses from now on, not only from then.
            this.#sent.record(destinationOf(new URL(spec.tokenUrl)), secretName, grant.refreshToken);
            // Other replicas first (they exchange next), then the backend (a restart of all of them reads it there).
            await this.#sharing?.rotated(spec.refreshTokenSecret, current, grant.refreshToken);
            writeBack.set(await this.#writeBack(spec, grant.refreshToken));
          }
          const lifetimeMs = grant.expiresInS === null ? spec.maxMs : Math.min(grant.expiresInS * 1000 - spec.safetyMs, spec.maxMs);
          return { value: new Secret(grant.accessToken), expiresAtMs: startMs + (grant.expiresInS ?? spec.maxMs / 1000) * 1000, useByMs: startMs + lifetimeMs, expiryKnown: grant.expiresInS !== null };
        });
      }
      case 'google_service_account':
        return this.#exchange(secretName, spec, new URL(spec.tokenUrl).host, trigger, async (transport) => {
          const grant = await serviceAccountGrant(spec, input(spec.keySecret), transport, startMs);
          const lifetimeMs = grant.expiresInS === null ? spec.maxMs : Math.min(grant.expiresInS * 1000 - spec.safetyMs, spec.maxMs);
          return { value: new Secret(grant.accessToken), expiresAtMs: startMs + (grant.expiresInS ?? spec.maxMs / 1000) * 1000, useByMs: startMs + lifetimeMs, expiryKnown: grant.expiresInS !== null };
        });
      case 'github_app':
        return this.#exchange(secretName, spec, new URL(spec.apiBaseUrl).host, trigger, async (transport) => {
          const { token, expiresAtMs } = await installationToken(spec, input(spec.privateKeySecret), transport, startMs);
          // GitHub's tokens live an hour; stop five minutes short, so a long request never carries an expired one.
          return { value: new Secret(token), expiresAtMs, useByMs: Math.min(expiresAtMs - 300_000, startMs + 3_600_000) };
        });
    }
  }

  /**
   * Stores a rotated refresh token before the access token that came with it is used: a restart, or the next
   * exchange, must find the new one, since most providers revoke the old one at once. It is never dropped (that
   * locks the credential out for good): a write that fails is kept, served as the current token, and retried until
   * it lands (secrets/PendingWrites); with write-back off, the exchange fails instead, and says why.
   */
  async #writeBack(spec: Extract<MinterSpec, { kind: 'oauth2_refresh' }>, refreshToken: string): Promise<'written' | 'pending'> {
    if (!spec.writeBack) throw new MintFailed('write_back_failed', null, { cause: new Error('refresh_token_write_back is false') });
    return this.#deps.secrets.store(spec.refreshTokenSecret, new Secret(refreshToken));
  }

  /** Remembers what was issued until it expires (a day when the issuer did not say), whether or not it is cached. */
  #issue<T extends Minted>(secretName: string, minted: T, expiryKnown = true): T {
    this.#remember(secretName, minted.value, expiryKnown ? minted.expiresAtMs : Math.max(minted.expiresAtMs, this.#now() + UNKNOWN_LIFETIME_MS));
    return minted;
  }

  async #exchange<T extends Minted & { readonly useByMs: number; readonly expiryKnown?: boolean }>(
    secretName: string, spec: MinterSpec, endpoint: string, trigger: 'request' | 'refresh_ahead',
    run: (transport: TokenTransport, writeBack: { set(v: TokenExchangeEvent['write_back']): void }) => Promise<T>,
  ): Promise<T> {
    const base = { secret_name: secretName, minter: spec.kind, endpoint, trigger } as const;
    let writeBack: TokenExchangeEvent['write_back'] = null;
    let minted: T;
    // K5 for exchanges: the inputs leave for the endpoint only once that is on disk (an audit failure stops here).
    await this.#deps.audit({ ...base, outcome: 'started', reason: null, status: null, expires_in_s: null, write_back: null });
    try {
      // Everything the exchange sends is recorded as it goes out (sent-ledger.ts).
      minted = await run(this.#sent.recording(this.#deps.transport, secretName), { set: (v) => { writeBack = v; } });
    } catch (err) {
      const failed = err instanceof MintFailed ? err : new MintFailed('bad_response', null, { cause: err });
      await this.#deps.audit({ ...base, outcome: 'failed', reason: failed.reason, status: failed.status, expires_in_s: null, write_back: writeBack }).catch(() => {});
      throw failed;
    }
    this.#issue(secretName, minted, minted.expiryKnown !== false);
    await this.#deps.audit({ ...base, outcome: 'minted', reason: null, status: null, expires_in_s: Math.round((minted.expiresAtMs - this.#now()) / 1000), write_back: writeBack });
    return minted;
  }
}
