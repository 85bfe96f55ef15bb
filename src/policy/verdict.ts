import type { InjectSpec, SecretSpec, SiteKey } from '../config/index.js';

export type { SiteKey };

/** What proxy/ knows about one request, as plain values: decide() never sees a socket. */
export interface RequestFacts {
  readonly scheme: 'https' | 'http';
  /** The destination: the CONNECT target (https) or the absolute-form URL's authority (http). Lower-case. */
  readonly connectHost: string;
  readonly connectPort: number;
  /** The TLS SNI the agent sent, or null (none, or plain http). */
  readonly sni: string | null;
  /** The raw Host header, or undefined when absent. */
  readonly hostHeader: string | undefined;
  readonly method: string;
  /** The request path without its query. */
  readonly path: string;
  /** The raw query without its `?`; '' when absent. */
  readonly query: string;
  /** Header pairs as sent (names lower-cased), duplicates kept. */
  readonly headers: readonly (readonly [name: string, value: string])[];
  /** The request's media type (lower-case, no parameters), or null: body injectors may be limited to one. */
  readonly contentType: string | null;
  /** A WebSocket handshake: its body is the messages that follow, and `websocket_message` sites are its body sites. */
  readonly isWebSocket?: boolean;
  /** The authenticated agent, when `clients:` is configured: it may unlock only these secrets. */
  readonly client: { readonly name: string; readonly secrets: ReadonlySet<string> } | null;
}

export type DeclineReason = 'client_not_allowed' | 'destination_not_in_binding' | 'binding_scope_violation' | 'site_violation' | 'plaintext_not_allowed';

export interface Injection {
  readonly secret: SecretSpec;
  readonly bindingIndex: number;
  /** The secret's sites where its placeholder was found: the value is written there and nowhere else. */
  readonly sites: readonly InjectSpec[];
}

export interface Declined {
  readonly secret: SecretSpec;
  readonly reason: DeclineReason;
}

export type DenyReason = 'bad_request' | 'sni_host_mismatch' | 'ambiguous_placeholder';

export type Verdict =
  /** The whole request is refused; its status and body come from proxy/'s one table. */
  | { readonly kind: 'deny'; readonly reason: DenyReason }
  /**
   * The request goes upstream. Each injection swaps one secret in at its site; every declined placeholder travels
   * verbatim (K4). Both lists empty: the request carried no placeholder.
   */
  | {
      readonly kind: 'forward';
      readonly injections: readonly Injection[];
      readonly declined: readonly Declined[];
      /**
       * Body injectors this request is in scope for: their placeholders are replaced as the body streams. For a
       * WebSocket handshake, the `websocket_message` sites: replaced in the agent's text messages.
       */
      readonly bodyInjectors: readonly Injection[];
      /**
       * Every secret bound to this destination (response_scrub on, honeytokens aside): a response may echo any of
       * them, injected now or stored upstream by an earlier request, so all are scrubbed from it.
       */
      readonly scrubbed: readonly SecretSpec[];
    };
