/**
 * Why a credential could not be minted, as a token_exchange record states it: a category and the endpoint's
 * status, never its body (an endpoint's error text may quote what it was sent).
 */
export type MintFailure = 'unreachable' | 'timeout' | 'untrusted' | 'too_large' | 'http_status' | 'oauth_error' | 'invalid_grant' | 'bad_response' | 'bad_key' | 'write_back_failed' | 'unsupported_payload' | 'ambiguous_request' | 'input_unavailable' | 'refresh_token_spent';

export class MintFailed extends Error {
  override readonly name = 'MintFailed';
  constructor(readonly reason: MintFailure, readonly status: number | null, options?: ErrorOptions) {
    super(`credential not minted: ${reason}${status === null ? '' : ` (HTTP ${status})`}`, options);
  }
}

/** A minted credential must fit in a header: visible ASCII, bounded (GitHub's JWT-format tokens run to a few KiB). */
export function checkCredentialText(text: unknown): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 16_384 || !/^[\x21-\x7e]+$/.test(text)) throw new MintFailed('bad_response', null);
  return text;
}
