/**
 * How mint/ reaches a token endpoint: one HTTPS request to a URL fixed by config, made by proxy/ with the same
 * upstream settings as every request (strict TLS, upstream.resolve, upstream.extra_ca_file). Redirects are never
 * followed (a 3xx is an answer like any other), and the answer is bounded in size and time.
 */
export interface TokenTransport {
  send(url: URL, init: TokenRequest): Promise<TokenResponse>;
}

export interface TokenRequest {
  readonly method: 'POST' | 'GET';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
}

export interface TokenResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Why an endpoint could not be asked: the `reason` of a failed token_exchange. */
export type TransportFailure = 'unreachable' | 'timeout' | 'untrusted' | 'too_large';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(readonly reason: TransportFailure, options?: ErrorOptions) {
    super(`token endpoint ${reason}`, options);
  }
}
