import type { BackendLocation } from '../config/index.js';
import type { Secret } from './secret.js';

export interface StoreOptions {
  /** How long to wait for another writer's lock (a rotated refresh token waits long rather than fail). */
  readonly lockWaitMs?: number;
}

export interface FetchContext {
  /** Aborted when the caller no longer needs the value (timeout, shutdown). */
  readonly signal: AbortSignal;
  /** Where a secret said its value is (`backend: { path, field }`); absent or null: found by its name. */
  readonly location?: BackendLocation | null;
}

/**
 * Where real secrets live. Contract: constructors do no I/O (`open*()` factories do);
 * `fetch` resolves a Secret or rejects with exactly SecretNotFound or BackendUnavailable;
 * no value ever appears in an error, a log line, toString or inspect.
 */
export interface SecretsBackend {
  readonly type: string;
  fetch(name: string, ctx: FetchContext): Promise<Secret>;
  /**
   * Replaces a value (a refresh token the provider rotated), durably, before resolving. Only backends keyswap can
   * write: the file store and BWS. Absent on read-only ones.
   */
  store?(name: string, value: Secret, opts?: StoreOptions): Promise<void>;
  /**
   * For a backend made of several (RoutedBackend): which one answers for `name`, and the key the cache keeps its
   * backoff under. Absent: one backend, one backoff.
   */
  partition?(name: string): { readonly key: string; readonly backend: SecretsBackend };
  /** Names the backend holds, where it can tell without revealing values. */
  list?(ctx: FetchContext): Promise<readonly string[]>;
  close?(): Promise<void>;
}
