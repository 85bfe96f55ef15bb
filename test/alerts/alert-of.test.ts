import { describe, expect, it } from 'vitest';
import { alertOf } from '../../src/alerts/index.js';
import type { AuditEvent } from '../../src/audit/index.js';

/* Which audit events are alerts, and what of them an alert carries (issue #27's list). */
const scoped = { request_id: 'r1', method: 'POST', destination: { host: 'api.example.test', port: 443, path_prefix: '/v1/x' }, client: 'ci' };

describe('alertOf', () => {
  it('maps honeytokens, violations, backend and token-exchange failures; nothing else', () => {
    const cases: [AuditEvent, string | null][] = [
      [{ ...scoped, type: 'honeytoken_triggered', secret_name: 'H', decision: 'denied' }, 'honeytoken'],
      ...(['client_not_allowed', 'destination_not_in_binding', 'binding_scope_violation', 'site_violation', 'plaintext_not_allowed'] as const).map((reason): [AuditEvent, string] => [{ ...scoped, type: 'inject_decision', decision: 'denied', reason, secret_name: 'K' }, 'violation']),
      [{ ...scoped, type: 'inject_decision', decision: 'allowed', reason: 'binding_matched', secret_name: 'K' }, null],
      [{ ...scoped, type: 'deny', decision: 'denied', reason: 'secret_unavailable', status: 503 }, 'backend_failed'],
      [{ ...scoped, type: 'deny', decision: 'denied', reason: 'unbound_destination', status: 403 }, null],
      [{ type: 'token_exchange', secret_name: 'G', minter: 'oauth2_refresh', endpoint: 'oauth.example.test', trigger: 'request', outcome: 'failed', reason: 'http_status', status: 400, expires_in_s: null, write_back: null }, 'token_exchange_failed'],
      [{ type: 'token_exchange', secret_name: 'G', minter: 'oauth2_refresh', endpoint: 'oauth.example.test', trigger: 'request', outcome: 'minted', reason: null, status: 200, expires_in_s: 3600, write_back: null }, null],
    ];
    for (const [e, type] of cases) expect(alertOf(e)?.type ?? null, JSON.stringify(e)).toBe(type);
    expect(alertOf({ ...scoped, type: 'inject_decision', decision: 'denied', reason: 'site_violation', secret_name: 'K' })?.data).toEqual({ client: 'ci', destination: { host: 'api.example.test', port: 443, method: 'POST', path: '/v1/x' }, request_id: 'r1', secret_name: 'K', reason: 'site_violation' });
  });
});
