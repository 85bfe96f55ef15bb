import type { AuditEvent } from '../audit/index.js';
import { Counter, Histogram, Registry, Sampled } from './registry.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What keyswap's parts report, read when scraped. */
export interface MetricSources {
  readonly openConnections: () => number;
  readonly cache: () => { readonly hits: number; readonly misses: number; readonly staleServed: number };
  /** `usage:` quotas: uses this period and limits (the numbers `keyswap usage` prints). */
  readonly usage?: () => readonly { readonly name: string; readonly used: number; readonly limit: number; readonly periodEndMs: number }[];
  readonly auditHealthy: () => boolean;
}

/**
 * keyswap's metrics. Request decisions, injections, refusals, scrubs and reloads are counted from the audit
 * events themselves, so the numbers and the audit log cannot disagree and no request-path module needs to know
 * metrics exist; timings come from the two places that measure them (the audit writer, the secret cache).
 */
export class KeyswapMetrics {
  readonly registry = new Registry();
  readonly #decisions = this.registry.add(new Counter('keyswap_decisions_total', 'Injection decisions, per decision and reason (allowed/binding_matched, or why a placeholder was kept).'));
  readonly #injections = this.registry.add(new Counter('keyswap_injections_total', 'Secrets injected, per configured secret name.'));
  readonly #refusals = this.registry.add(new Counter('keyswap_refusals_total', 'Requests and tunnels refused, per refusal code.'));
  readonly #responses = this.registry.add(new Counter('keyswap_upstream_responses_total', 'Upstream responses relayed, per status class and whether the transfer completed.'));
  readonly #responseSeconds = this.registry.add(new Histogram('keyswap_request_duration_seconds', 'Whole decrypted exchanges, request start to response end.', LATENCY_BUCKETS));
  readonly #scrubs = this.registry.add(new Counter('keyswap_response_scrubs_total', 'Echoes of injected secrets found in responses, per secret and action (redacted/blocked).'));
  readonly #honeytokens = this.registry.add(new Counter('keyswap_honeytokens_triggered_total', 'Honeytoken placeholders used, per secret.'));
  readonly #passthrough = this.registry.add(new Counter('keyswap_tls_passthrough_total', 'Opaque tunnels to unbound destinations.'));
  readonly #reloads = this.registry.add(new Counter('keyswap_config_reloads_total', 'Configuration reloads, per result (applied/refused).'));
  readonly #auditRecords = this.registry.add(new Counter('keyswap_audit_records_total', 'Audit records written.'));
  readonly #auditWrite = this.registry.add(new Histogram('keyswap_audit_write_seconds', 'Durable audit writes (one per group-commit batch), write to on-disk.', LATENCY_BUCKETS));
  readonly #backend = this.registry.add(new Histogram('keyswap_backend_fetch_seconds', 'Secret backend calls (cache misses), per result.', LATENCY_BUCKETS));

  constructor(sources: MetricSources, version: string) {
    const started = Date.now() / 1000;
    this.registry.add(new Sampled('keyswap_build_info', 'The running version.', 'gauge', () => [[{ version }, 1]]));
    this.registry.add(new Sampled('keyswap_open_connections', 'Agent connections open now (tunnels and decrypted connections).', 'gauge', () => [[{}, sources.openConnections()]]));
    this.registry.add(new Sampled('keyswap_usage_used', 'Uses counted under each usage: quota this period.', 'gauge', () => (sources.usage?.() ?? []).map((q) => [{ quota: q.name }, q.used])));
    this.registry.add(new Sampled('keyswap_usage_limit', 'Each usage: quota\'s limit per period.', 'gauge', () => (sources.usage?.() ?? []).map((q) => [{ quota: q.name }, q.limit])));
    this.registry.add(new Sampled('keyswap_usage_period_end_seconds', 'When each usage: quota\'s period ends (Unix seconds).', 'gauge', () => (sources.usage?.() ?? []).map((q) => [{ quota: q.name }, Math.round(q.periodEndMs / 1000)])));
    this.registry.add(new Sampled('keyswap_audit_healthy', '1 while the audit log accepts writes; 0 once a write failed (injected requests are refused).', 'gauge', () => [[{}, sources.auditHealthy() ? 1 : 0]]));
    this.registry.add(new Sampled('keyswap_secret_cache_lookups_total', 'Secret cache lookups, per result (hit, miss, stale: a value past its TTL served while the backend fails).', 'counter', () => {
      const s = sources.cache();
      return [[{ result: 'hit' }, s.hits], [{ result: 'miss' }, s.misses], [{ result: 'stale' }, s.staleServed]];
    }));
    this.registry.add(new Sampled('process_resident_memory_bytes', 'Resident memory.', 'gauge', () => [[{}, process.memoryUsage.rss()]]));
    this.registry.add(new Sampled('process_start_time_seconds', 'Start time, Unix seconds.', 'gauge', () => [[{}, started]]));
  }

  /** Every audit event, as it is appended. */
  onAuditEvent(e: AuditEvent): void {
    this.#auditRecords.inc();
    switch (e.type) {
      case 'inject_decision':
        this.#decisions.inc({ decision: e.decision, reason: e.reason });
        if (e.decision === 'allowed') this.#injections.inc({ secret: e.secret_name });
        return;
      case 'deny':
        this.#refusals.inc({ reason: e.reason });
        return;
      case 'tunnel_failed':
        this.#refusals.inc({ reason: e.cause });
        return;
      case 'upstream_response':
        this.#responses.inc({ code_class: `${Math.floor(e.status / 100)}xx`, complete: String(e.complete) });
        this.#responseSeconds.observe(e.ms / 1000);
        return;
      case 'response_scrubbed':
        this.#scrubs.inc({ secret: e.secret_name, action: e.action }, e.count);
        return;
      case 'honeytoken_triggered':
        this.#honeytokens.inc({ secret: e.secret_name });
        return;
      case 'tls_passthrough':
        this.#passthrough.inc();
        return;
      case 'config_reload':
        this.#reloads.inc({ result: e.ok ? 'applied' : 'refused' });
        return;
      default:
        return;
    }
  }

  onAuditWrite(ms: number): void { this.#auditWrite.observe(ms / 1000); }

  onBackendCall(ms: number, ok: boolean): void { this.#backend.observe(ms / 1000, { result: ok ? 'ok' : 'error' }); }
}
