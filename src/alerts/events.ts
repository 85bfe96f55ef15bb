import type { AuditEvent } from '../audit/index.js';

import { ALERT_EVENTS, type AlertEvent } from '../config/index.js';

export { ALERT_EVENTS, type AlertEvent };

/**
 * What an alert says: names, hosts, a path prefix (never its query), reasons and the request id that finds the audit
 * records. Never a secret value, a placeholder, a header value or a query string: every field comes from an audit
 * event (whose fields already exclude them) or from the config.
 */
export interface AlertData {
  readonly quota?: string;
  readonly used?: number;
  readonly limit?: number;
  readonly period?: string;
  readonly secret_name?: string;
  readonly client?: string | null;
  readonly destination?: { readonly host: string; readonly port: number; readonly method: string; readonly path: string };
  readonly reason?: string;
  readonly request_id?: string;
  readonly credential?: string;
  readonly expires?: string;
  /** approval_requested, access_requested: answer it with keyswap approve ID (or deny ID). */
  readonly approval_id?: string;
  /** lockdown: who switched it on (cli, ui). */
  readonly actor?: string;
  /** A coalesced summary: how many of this kind came since the last one sent. */
  readonly count?: number;
}

/** The denials that are a placeholder aimed where its binding does not allow. */
const VIOLATIONS = new Set(['client_not_allowed', 'destination_not_in_binding', 'binding_scope_violation', 'site_violation', 'plaintext_not_allowed']);

/** The alert an audit event is, if any: a pure mapping over the records keyswap already writes. */
export function alertOf(e: AuditEvent): { readonly type: AlertEvent; readonly data: AlertData } | null {
  const scoped = (x: { request_id: string; method: string; destination: { host: string; port: number; path_prefix: string }; client: string | null }): AlertData => ({
    client: x.client,
    destination: { host: x.destination.host, port: x.destination.port, method: x.method, path: x.destination.path_prefix },
    request_id: x.request_id,
  });
  switch (e.type) {
    case 'honeytoken_triggered':
      return { type: 'honeytoken', data: { ...scoped(e), secret_name: e.secret_name } };
    case 'inject_decision':
      return e.decision === 'denied' && VIOLATIONS.has(e.reason) ? { type: 'violation', data: { ...scoped(e), secret_name: e.secret_name, reason: e.reason } } : null;
    case 'mcp_tool_call':
      // A tool the operator did not allow is what a hijacked agent reaches for.
      return e.decision === 'denied' ? { type: 'violation', data: { ...scoped(e), reason: `mcp_tool_denied: ${e.tool}` } } : null;
    case 'deny':
      return e.reason === 'secret_unavailable' ? { type: 'backend_failed', data: { ...scoped(e), reason: e.reason } } : null;
    case 'approval':
      return e.step === 'requested' ? { type: 'approval_requested', data: { ...scoped(e), secret_name: e.secret_names.join(','), approval_id: e.approval_id } } : null;
    case 'access_request':
      return e.step === 'requested' ? { type: 'access_requested', data: { client: e.client, secret_name: e.secret_name, approval_id: e.access_id, destination: { host: e.host, port: e.port ?? 443, method: e.methods?.join(',') ?? '*', path: e.paths?.join(',') ?? '/**' } } } : null;
    case 'operator':
      return e.action === 'lockdown' ? { type: 'lockdown', data: { reason: e.reason ?? 'no reason given', actor: e.actor } } : null;
    case 'token_exchange':
      return e.outcome === 'failed' ? { type: 'token_exchange_failed', data: { secret_name: e.secret_name, reason: e.reason ?? 'failed', destination: { host: e.endpoint, port: 443, method: 'POST', path: '' } } } : null;
    default:
      return null;
  }
}
