import type { AuditEvent } from '../audit/index.js';
import type { Config } from '../config/index.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { MintService } from '../mint/index.js';
import type { ScrubberCache } from '../scrub/index.js';
import type { Secret } from '../secrets/index.js';
import type { RateLimiter } from './rate-limiter.js';
import type { UsageMeter } from '../usage/index.js';
import type { UpstreamClient } from './upstream.js';

/** Where secrets come from, as the pipeline sees it (secrets/PendingWrites over the SecretCache). */
export interface SecretSource {
  get(name: string): Promise<Secret>;
  /** A value keyswap produced (a rotated refresh token): written, or kept and retried until it is (never dropped). */
  store(name: string, value: Secret): Promise<'written' | 'pending'>;
}

/** Where audit events go, as the pipeline sees it (audit/AuditWriter). */
export interface AuditSink {
  /** Durable: resolves after the fsync that covers it. */
  append(event: AuditEvent): Promise<void>;
  /** Written with the next durable batch (or shortly): for records no request waits on. */
  appendLazy(event: AuditEvent): Promise<void>;
  /** False while audit writes fail (every injected request is refused); true again once a retried write succeeds. */
  readonly isHealthy: boolean;
}

/**
 * One consistent view of the configuration: a request reads the current snapshot once, at entry, and uses it to
 * the end, so a reload between two requests never mixes two configs inside one.
 */
export interface Snapshot {
  readonly config: Config;
  readonly policy: CompiledPolicy;
  readonly secrets: SecretSource;
  readonly audit: AuditSink;
  readonly upstream: UpstreamClient;
  readonly limiter: RateLimiter;
  /** `usage:` quotas and their counts: one meter for the process, reconfigured by a reload. */
  readonly usage: UsageMeter;
  /** Minted credentials (OAuth2, GitHub App, JWT), cached per inputs; a reload starts a new one. */
  readonly mint: MintService;
  /** Compiled scrubbers per policy and destination: kept across reloads (each policy's go with it). */
  readonly scrubbers: ScrubberCache;
}
