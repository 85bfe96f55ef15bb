import { STATUS_CODES } from 'node:http';
import type { DenyReason } from '../audit/index.js';

/** Every way keyswap refuses a request: the audit's closed set of deny reasons. One table maps each to what the agent sees; nothing else answers errors. */
export type RefusalCode = DenyReason;

export class Refusal extends Error {
  override readonly name = 'Refusal';
  constructor(readonly code: RefusalCode, options?: ErrorOptions & { retryAfterSeconds?: number; answer?: ProtocolAnswer }) {
    super(code, options);
    this.retryAfterSeconds = options?.retryAfterSeconds ?? null;
    this.answer = options?.answer ?? null;
  }
  /** For rate_limited: sent as Retry-After. */
  readonly retryAfterSeconds: number | null;
  /** The refusal in the protocol the agent speaks, in place of the table's text (an MCP client's JSON-RPC errors). */
  readonly answer: ProtocolAnswer | null;
}

/** A refusal's answer in the agent's own protocol: built by keyswap from what the agent sent, never from a value. */
export interface ProtocolAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/**
 * The agent-facing status and body of each refusal. Bodies are fixed literals: none carries a cause, a header
 * value, a placeholder or a secret (K1). A test pins each one.
 */
export const OUTCOMES: Record<RefusalCode, readonly [status: number, body: string]> = {
  bad_request: [400, 'keyswap: bad request\n'],
  sni_host_mismatch: [421, 'keyswap: request host does not match the CONNECT target\n'],
  unbound_destination: [403, 'keyswap: destination not allowed\n'],
  ambiguous_placeholder: [400, 'keyswap: two placeholders compete for one credential site\n'],
  secret_unavailable: [503, 'keyswap: secret unavailable\n'],
  audit_unavailable: [503, 'keyswap: audit log unavailable\n'],
  upstream_failed: [502, 'keyswap: upstream connection failed (reset or unreachable)\n'],
  upstream_unresolved: [502, 'keyswap: upstream host name did not resolve\n'],
  upstream_refused: [502, 'keyswap: upstream refused the connection\n'],
  upstream_untrusted: [502, 'keyswap: upstream certificate not trusted\n'],
  upstream_timeout: [504, 'keyswap: upstream timed out\n'],
  plaintext_via_parent: [403, 'keyswap: a secret is never sent over plain http through the parent proxy (upstream.proxy); use https, or list the host in upstream.no_proxy\n'],
  parent_proxy_failed: [502, 'keyswap: the parent proxy (upstream.proxy) refused or failed the connection\n'],
  rate_limited: [429, 'keyswap: rate limit for this credential reached; retry later\n'],
  usage_limit_reached: [429, 'keyswap: usage quota for this credential reached; retry after the period ends\n'],
  proxy_auth_required: [407, 'keyswap: proxy authentication required (http://NAME:TOKEN@host:port)\n'],
  upstream_echoed_secret: [502, 'keyswap: upstream response echoed a credential; blocked\n'],
  not_a_proxy_request: [400, 'keyswap: this is a proxy; send absolute-form or CONNECT requests, or use a route: /p/<route>/\n'],
  unknown_route: [404, 'keyswap: no such route (see routes: in keyswap.yaml)\n'],
  browser_request: [403, 'keyswap: requests from web pages are refused\n'],
  route_host_not_loopback: [421, 'keyswap: address keyswap as 127.0.0.1, localhost or [::1]\n'],
  plaintext_https_not_loopback: [403, 'keyswap: an https:// request line is accepted only from this host; send HTTPS through CONNECT\n'],
  upgrade_unsupported: [501, 'keyswap: protocol upgrades are not supported\n'],
  headers_too_large: [431, 'keyswap: request headers too large\n'],
  request_timeout: [408, 'keyswap: request head not received in time\n'],
  upload_timeout: [408, 'keyswap: request body not received in time (timeouts.upload_idle_seconds, upload_max_seconds)\n'],
  self_destination: [403, 'keyswap: a request to keyswap itself is refused\n'],
  signing_unsupported: [400, 'keyswap: this request cannot be re-signed (SigV4 streaming payloads, or a body both signed and rewritten)\n'],
  signing_scope_violation: [403, 'keyswap: a signed header names a resource the binding does not allow reading (x-amz-copy-source)\n'],
  body_too_large_to_sign: [413, 'keyswap: a body signed by keyswap may be at most 16 MiB (S3: send x-amz-content-sha256: UNSIGNED-PAYLOAD)\n'],
  token_exchange_failed: [503, 'keyswap: could not obtain a credential from its token endpoint; nothing was sent\n'],
  upstream_encoding_unsupported: [502, 'keyswap: upstream response used an encoding keyswap cannot inspect; blocked\n'],
  lockdown: [503, 'keyswap: lockdown: an operator has stopped every use of secrets (keyswap lockdown --off lifts it)\n'],
  approval_denied: [403, 'keyswap: an operator denied this request\n'],
  approval_timeout: [403, 'keyswap: this request needs an operator\'s approval, and none came in time\n'],
  approval_queue_full: [429, 'keyswap: too many requests are waiting for an operator\'s approval; retry later\n'],
  approval_body_too_large: [413, 'keyswap: a request held for approval may carry a body of at most 1 MiB\n'],
  shared_state_unavailable: [503, 'keyswap: the state replicas share (rate limits, quotas, minted credentials) is unavailable; nothing was sent\n'],
  mcp_tool_denied: [403, 'keyswap: this MCP server\'s tool policy (mcp.tools) does not allow a tool this request calls\n'],
  mcp_body_unreadable: [400, 'keyswap: this MCP server has a tool policy, so a request body must be JSON-RPC keyswap can read: UTF-8 JSON, uncompressed, no key twice\n'],
  mcp_body_too_large: [413, 'keyswap: a request to an MCP server with a tool policy may carry at most 4 MiB\n'],
  mcp_bodies_busy: [503, 'keyswap: too many request bodies to MCP servers with a tool policy are being read at once; retry later\n'],
  internal: [500, 'keyswap: internal error\n'],
};

/**
 * The raw HTTP/1.1 bytes of a refusal, for sockets that have no ServerResponse (CONNECT, parse errors). The
 * status line's reason is Node's standard phrase for the code, as a ServerResponse would write it.
 */
export function rawRefusal(code: RefusalCode, extraHeaders: Readonly<Record<string, string>> = {}): string {
  const [status, body] = OUTCOMES[code];
  const extra = Object.entries(refusalHeaders(code, extraHeaders)).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}

/** Headers a refusal carries besides its body: the challenge for 407, and whatever the refusal adds (Retry-After). */
export function refusalHeaders(code: RefusalCode, extra: Readonly<Record<string, string>>): Record<string, string> {
  return code === 'proxy_auth_required' ? { 'proxy-authenticate': 'Basic realm="keyswap"', ...extra } : { ...extra };
}

/**
 * What a failed upstream connection or exchange is, by its errno or TLS error code: the agent's body names the
 * category (never the address or the message), the same for a MITM'd request and an opaque tunnel.
 */
export function upstreamRefusal(err: Error & { code?: string }): Refusal {
  const code = err.code ?? '';
  if (code === 'EPARENTPROXY') return new Refusal('parent_proxy_failed', { cause: err });
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return new Refusal('upstream_timeout', { cause: err });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NODATA' || code === 'EAI_NONAME') return new Refusal('upstream_unresolved', { cause: err });
  if (code === 'ECONNREFUSED') return new Refusal('upstream_refused', { cause: err });
  if (/CERT|SIGNATURE|ISSUER|ALTNAME|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return new Refusal('upstream_untrusted', { cause: err });
  return new Refusal('upstream_failed', { cause: err });
}
