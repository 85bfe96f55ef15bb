/**
 * The closed set of audit events (DESIGN.md §5), a public contract that operators' scripts read. Their fields are
 * the allowlist: nothing else can reach the audit file, and none of these fields may carry a secret, a
 * placeholder, a header value, a body or a query string. `ts` and `v` are added by the writer.
 */
export const AUDIT_SCHEMA_VERSION = 2;

export interface Destination {
  readonly host: string;
  readonly port: number;
  /** At most the first two path segments, never the query; a segment holding a placeholder becomes `*`. */
  readonly path_prefix: string;
}

interface RequestScoped {
  readonly request_id: string;
  readonly method: string;
  readonly destination: Destination;
  readonly client: string | null;
}

type InjectReason =
  | 'binding_matched'
  | 'client_not_allowed'
  | 'destination_not_in_binding'
  | 'binding_scope_violation'
  | 'site_violation'
  | 'plaintext_not_allowed';

/** Why a request was refused: every refusal keyswap makes (proxy/refusal.ts maps each to its answer). */
export type DenyReason =
  | 'bad_request'
  | 'sni_host_mismatch'
  | 'unbound_destination'
  | 'ambiguous_placeholder'
  | 'secret_unavailable'
  | 'audit_unavailable'
  | 'upstream_failed'
  | 'upstream_unresolved'
  | 'upstream_refused'
  | 'upstream_untrusted'
  | 'upstream_timeout'
  | 'parent_proxy_failed'
  | 'plaintext_via_parent'
  | 'upstream_echoed_secret'
  | 'rate_limited'
  | 'usage_limit_reached'
  | 'proxy_auth_required'
  | 'not_a_proxy_request'
  | 'unknown_route'
  | 'browser_request'
  | 'route_host_not_loopback'
  | 'plaintext_https_not_loopback'
  | 'upgrade_unsupported'
  | 'headers_too_large'
  | 'request_timeout'
  | 'upload_timeout'
  | 'self_destination'
  | 'upstream_encoding_unsupported'
  | 'token_exchange_failed'
  | 'signing_unsupported'
  | 'signing_scope_violation'
  | 'body_too_large_to_sign'
  | 'lockdown'
  | 'approval_denied'
  | 'approval_timeout'
  | 'approval_body_too_large'
  | 'shared_state_unavailable'
  | 'approval_queue_full'
  | 'mcp_tool_denied'
  | 'mcp_body_unreadable'
  | 'mcp_body_too_large'
  | 'mcp_bodies_busy'
  | 'internal';

export type AuditEvent =
  | (RequestScoped & {
      readonly type: 'inject_decision';
      readonly decision: 'allowed' | 'denied';
      readonly reason: InjectReason;
      readonly secret_name: string;
    })
  | (RequestScoped & {
      readonly type: 'deny';
      readonly decision: 'denied';
      readonly reason: DenyReason;
      readonly status: number;
    })
  /** An opaque tunnel whose upstream could not be reached: `cause` is the RefusalCode the agent was answered with. */
  | (RequestScoped & {
      readonly type: 'tunnel_failed';
      readonly cause: DenyReason;
      readonly status: number;
    })
  | (RequestScoped & {
      readonly type: 'upstream_response';
      readonly status: number;
      readonly bytes: number;
      readonly ms: number;
      /** false when the transfer broke (reset, abort) after the response head. */
      readonly complete: boolean;
    })
  | (RequestScoped & {
      readonly type: 'honeytoken_triggered';
      readonly secret_name: string;
      readonly decision: 'allowed' | 'denied';
    })
  /**
   * A request held for an operator's answer (a binding's `approve:`): requested (durable before it is held),
   * then granted, denied or expired. `by`: cli or ui (the operator's console), `remembered` (an earlier approval
   * with remember), `agent_left` (the agent closed the request while it was held); null while requested.
   */
  | (RequestScoped & {
      readonly type: 'approval';
      readonly approval_id: string;
      readonly step: 'requested' | 'granted' | 'denied' | 'expired';
      readonly by: 'cli' | 'ui' | 'remembered' | 'agent_left' | null;
      readonly secret_names: readonly string[];
      readonly remember_s: number | null;
    })
  /**
   * A `tools/call` to a remote MCP server whose binding has a tool policy (`mcp: { tools }`): allowed (durable
   * before the request goes), or denied (nothing of the request sent). `tool`: the name it called, or
   * `(not a tool name)` for one no server would give (control characters, over 128 characters, none at all).
   */
  | (RequestScoped & {
      readonly type: 'mcp_tool_call';
      readonly tool: string;
      readonly decision: 'allowed' | 'denied';
    })
  | (RequestScoped & {
      readonly type: 'response_scrubbed';
      readonly secret_name: string;
      readonly count: number;
      readonly action: 'redacted' | 'blocked';
    })
  | {
      readonly type: 'tls_passthrough';
      readonly request_id: string;
      readonly destination: Destination;
      readonly client: string | null;
    }
  /**
   * keyswap exchanged backend secrets for a credential at a token endpoint fixed by config (OAuth2, GitHub App):
   * fsynced before the minted credential is first used. `endpoint` is the endpoint's host; `trigger` whether a
   * request waited for it or it renewed a credential ahead of expiry. Never the credential or any input.
   */
  | {
      readonly type: 'token_exchange';
      readonly secret_name: string;
      readonly minter: string;
      readonly endpoint: string;
      readonly trigger: 'request' | 'refresh_ahead';
      /** started: durable before the inputs leave for the endpoint; minted: before the credential is used. */
      readonly outcome: 'started' | 'minted' | 'failed';
      /** Why it failed: unreachable, timeout, untrusted, http_status, oauth_error, bad_response, input_unavailable. */
      readonly reason: string | null;
      /** The endpoint's HTTP status, when it answered. */
      readonly status: number | null;
      readonly expires_in_s: number | null;
      /** oauth2_refresh: a rotated refresh token written back, kept to be written (retried until it is), or none rotated (null). */
      readonly write_back: 'written' | 'pending' | null;
    }
  /**
   * keyswap closed what a client still held open — connections (their HTTP/1.1 requests and uploads, HTTP/2 sessions
   * and tunnels) and WebSockets (1008) — because the configuration in force no longer admits it: removed, or given a
   * new token, by a reload or the control API ('client_revoked'), or past its `expires` ('client_expired').
   */
  | { readonly type: 'client_disconnected'; readonly client: string | null; readonly reason: 'client_revoked' | 'client_expired' | 'clients_required'; readonly connections: number; readonly websockets: number }
  /**
   * One attempt to deliver an alert to a webhook or the mail server (`sink`: its host): delivered (2xx), retrying (with backoff, for up
   * to an hour from the alert), or dropped. `alert_id` is the webhook-id receivers see.
   */
  | { readonly type: 'alert_delivery'; readonly alert_id: string; readonly event: string; readonly sink: string; readonly outcome: 'delivered' | 'retrying' | 'dropped'; readonly attempt: number; readonly status: number | null }
  /**
   * An operator changed the running keyswap through the control API: `actor` says through what (the CLI on the
   * control socket, or the console), `action` what, `target` on what (a client, a session, an approval id).
   * Never a token, a value or a placeholder; `reason` is the operator's own text (lockdown --reason).
   */
  | { readonly type: 'operator'; readonly actor: 'cli' | 'ui'; readonly action: 'lockdown' | 'lockdown_off' | 'client_revoked' | 'session_started' | 'session_ended' | 'approval_granted' | 'approval_denied' | 'ui_login'; readonly target: string | null; readonly reason: string | null }
  /**
   * An agent asked for a binding it lacks (`keyswap_request_access`, through the proxy as its client): `requested`
   * (durable before an operator is shown it), then `accepted` (the operator's CLI wrote the binding and reloaded),
   * `declined`, or `expired` (unanswered for a day; a restart forgets pending ones unrecorded). The agent's reason is shown to operators,
   * never written here.
   */
  | { readonly type: 'access_request'; readonly access_id: string; readonly step: 'requested' | 'accepted' | 'declined' | 'expired'; readonly by: 'agent' | 'cli' | 'ui' | null; readonly client: string | null; readonly secret_name: string; readonly host: string; readonly port: number | null; readonly methods: readonly string[] | null; readonly paths: readonly string[] | null }
  /**
   * shared_state: Redis stopped or started answering. `fallback` says what requests that need it get meanwhile
   * (refuse: 503; local: this replica's share of each limit). `reason`: the client library's error code, never a reply.
   */
  | { readonly type: 'shared_state'; readonly state: 'available' | 'unavailable'; readonly fallback: 'refuse' | 'local'; readonly reason: string | null }
  | { readonly type: 'proxy_start'; readonly pid: number; readonly version: string; readonly listen: string; readonly config: string }
  | { readonly type: 'proxy_stop'; readonly pid: number; readonly reason: string }
  /** SIGHUP: ok with the new file in force, or the errors (file:line: field, never a value) and the old config kept. */
  | { readonly type: 'config_reload'; readonly ok: boolean; readonly config: string; readonly errors: readonly string[] }
  /**
   * Written by the writer itself: the file it held was no longer the one at the configured path, so it reopened
   * the path and continued there. reason: nothing was at the path ('deleted'; a rename away counts) or another file
   * was ('replaced'). old_file: whether the file it was writing still exists under some name ('linked': moved, as
   * a rotation without SIGUSR1 does) or is gone ('unlinked': its records survive only in copies). seq/prev continue
   * the writer's own chain, never the head of what it found; verify.ts says what `audit verify` makes of it.
   */
  | { readonly type: 'audit_file_replaced'; readonly reason: 'deleted' | 'replaced'; readonly old_file: 'linked' | 'unlinked' }
  /**
   * Written by the writer itself when a write succeeds again after writes failed: `refused` events were refused
   * meanwhile (their requests failed closed, so they have no seq), `code` is the errno code of the failure that
   * began it ('unknown' when it had none), `down_ms` how long it lasted. Never a path or a value.
   */
  | { readonly type: 'audit_recovered'; readonly refused: number; readonly code: string; readonly down_ms: number }
  /**
   * Written by the writer itself when it finds an incomplete last line (a write cut short by kill -9 or a full
   * disk) and closes it with a newline: the fragment's length and SHA-256, so `audit verify` can tell that line
   * from one inserted later (which no record vouches for).
   */
  | { readonly type: 'audit_torn_line'; readonly bytes: number; readonly sha256: string }
  /**
   * Written by the writer itself at start when the log ends before the head it last recorded outside the log
   * (head-mark.ts): records up to `expected_seq` were cut from the end while keyswap was stopped.
   */
  | { readonly type: 'audit_tail_cut'; readonly expected_seq: number; readonly found_seq: number };


/**
 * What the writer puts on disk: the event plus its timestamp, schema version, chain link (`prev`: the previous
 * record's `mac`) and, last, `mac`: HMAC-SHA256 under the audit key of the line up to it (chain.ts). Version 1
 * records had no `mac`, and `prev` was the plain SHA-256 of the previous line.
 */
/** `chain_id`: the writer that wrote it (its host or pod name and a nonce of its start); absent in older records. */
export type AuditRecord = AuditEvent & { readonly ts: string; readonly v: number; readonly seq: number; readonly prev: string; readonly chain_id?: string; readonly mac?: string };
