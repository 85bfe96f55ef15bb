import type { QuotaSpec, SharedStateSpec } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import { deriveSharedKeys } from './keys.js';
import { SharedMinting } from './mint-sharing.js';
import { SharedQuotas } from './quotas.js';
import { SharedRates } from './rates.js';
import { SharedStore } from './store.js';

export { deriveSharedKeys, SharedMinting, SharedQuotas, SharedRates, SharedStore };

/** What replicas share, ready for the snapshot: the rate gate, the quota counts and minting, over one connection. */
export interface SharedState {
  readonly rates: SharedRates;
  readonly quotas: SharedQuotas;
  /** null: no minted secret needs key_secret. */
  readonly minting: SharedMinting | null;
  close(): Promise<void>;
}

export interface SharedStateDeps {
  readonly quotas: readonly QuotaSpec[];
  /** A backend secret by name (the Redis password, key_secret). */
  readonly secret: (name: string) => Promise<Secret>;
  readonly log: Logger;
  /** Told of every change of Redis's answering (audited by the runtime). */
  readonly onState: (available: boolean, reason: string | null) => void;
  readonly quotasChanged: () => void;
}

/**
 * Opens `shared_state:`: reads the password and key from the backend, connects (an unreachable Redis is a warning;
 * keyswap serves under `on_unavailable` until it answers), and builds each shared part over the connection.
 */
export async function openSharedState(spec: SharedStateSpec, deps: SharedStateDeps): Promise<SharedState> {
  const password = spec.redis.passwordSecret === null ? null : (await deps.secret(spec.redis.passwordSecret)).reveal();
  const store = await SharedStore.open(spec.redis, password, deps.log);
  const quotas = new SharedQuotas(store, deps.quotas, { fallback: spec.onUnavailable, replicas: spec.replicas, log: deps.log, onChange: deps.quotasChanged });
  const where = `${spec.redis.tls === null ? 'redis' : 'rediss'}://${spec.redis.host.includes(':') ? `[${spec.redis.host}]` : spec.redis.host}:${spec.redis.port}/${spec.redis.db}`;
  const tell = (available: boolean, reason: string | null): void => {
    if (available) deps.log.info({ redis: where }, 'shared state: Redis answers; limits, quotas and minted credentials are shared');
    else deps.log.warn({ redis: where, reason, on_unavailable: spec.onUnavailable }, spec.onUnavailable === 'refuse' ? 'shared state: Redis unreachable; requests that need it are refused (503 shared_state_unavailable)' : `shared state: Redis unreachable; each limit is enforced here at ÷ ${spec.replicas} (on_unavailable: local)`);
    deps.onState(available, reason);
    if (available) void quotas.rejoin();
  };
  store.onState = tell;
  tell(store.available, store.available ? null : 'no answer at start');
  return {
    rates: new SharedRates(store, spec.onUnavailable, spec.replicas),
    quotas,
    minting: spec.keySecret === null ? null : new SharedMinting(store, async () => deriveSharedKeys(await deps.secret(spec.keySecret as string), spec.keySecret as string), { fallback: spec.onUnavailable, log: deps.log }),
    async close() {
      quotas.close();
      await store.close();
    },
  };
}
