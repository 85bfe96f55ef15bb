import type { AuditEvent } from '../audit/index.js';
import type { Config } from '../config/index.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { MintService } from '../mint/index.js';
import type { ScrubberCache } from '../scrub/index.js';
import type { Secret } from '../secrets/index.js';
import type { Quotas, RateGate } from '../usage/index.js';

import type { UpstreamClient } from './upstream.js';

/** Where secrets come from, as the pipeline sees it (secrets/PendingWrites over the SecretCache). */
export interface SecretSource {
  get(name: string): Promise<Secret>;
  /** Past the cache: a value other replicas may have rewritten since it was cached. */
  fresh(name: string): Promise<Secret>;
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
 * What an operator decides while keyswap runs (control/ keeps it; the pipeline only asks). Read live, not per
 * snapshot: a lockdown or an answer applies to requests already under way.
 */
export interface OperatorGate {
  /** Non-null while lockdown is on: every request that would carry a secret is refused (503 lockdown). */
  readonly lockdown: { readonly reason: string | null; readonly sinceMs: number } | null;
  /** An approval an operator asked to remember for this key (client, binding, method), if still in force. */
  remembered(key: string): boolean;
  /** Whether one more request of this account (a client, a session's parent) may wait: the waiting room is bounded. */
  hasRoom(account: string | null): boolean;
  /**
   * Holds a request until an operator answers, its time runs out, or `gone` aborts (the agent left). Never
   * rejects: every way out is an answer.
   */
  hold(request: HeldRequest, gone: AbortSignal): Promise<HoldAnswer>;
  /**
   * An agent asks for a binding it does not have (`keyswap_request_access`): recorded durably and kept for an
   * operator (`keyswap approvals`, the console). Bounded: `full` past it. The same pending request again gets its id.
   */
  proposeAccess(p: AccessProposal): Promise<{ readonly kind: 'proposed'; readonly id: string } | { readonly kind: 'full' }>;
}

/** A binding an agent asks for, checked against the configuration in force; `reason` is the agent's own text. */
export interface AccessProposal {
  readonly client: string | null;
  /** Whom it counts against (a session: its parent). */
  readonly account: string | null;
  readonly secretName: string;
  readonly host: string;
  readonly port: number | null;
  readonly methods: readonly string[] | null;
  readonly paths: readonly string[] | null;
  readonly reason: string;
}

/** What an operator is shown of a held request: names, the destination, a path without its query; never a value. */
export interface HeldRequest {
  readonly id: string;
  readonly requestId: string;
  readonly client: string | null;
  /** Whom the held request counts against in the waiting room (a session: its parent). */
  readonly account: string | null;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  /** The whole path (never the query), a segment holding a placeholder shown as `*`. */
  readonly path: string;
  readonly secretNames: readonly string[];
  /** Client, bindings and method: what `remember` lets through again. */
  readonly rememberKey: string;
  readonly timeoutMs: number;
  readonly rememberMs: number;
}

export type HoldAnswer =
  | { readonly kind: 'granted'; readonly by: 'cli' | 'ui'; readonly rememberMs: number }
  | { readonly kind: 'denied'; readonly by: 'cli' | 'ui' }
  | { readonly kind: 'expired'; readonly by: 'agent_left' | null }
  /** The waiting room was full when it came. */
  | { readonly kind: 'full' };

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
  readonly limiter: RateGate;
  /** `usage:` quotas and their counts: one meter for the process, reconfigured by a reload. */
  readonly usage: Quotas;
  /** Minted credentials (OAuth2, GitHub App, JWT), cached per inputs; a reload starts a new one. */
  readonly mint: MintService;
  /** Compiled scrubbers per policy and destination: kept across reloads (each policy's go with it). */
  readonly scrubbers: ScrubberCache;
  /** Lockdown and approvals: the one object for the process, the same in every snapshot. */
  readonly operator: OperatorGate;
}
