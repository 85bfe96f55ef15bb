/** The backend has no secret of that name. The message names the secret, never a value. */
export class SecretNotFound extends Error {
  override readonly name = 'SecretNotFound';
  constructor(readonly secretName: string, options?: ErrorOptions) {
    super(`secret ${secretName} not found in the backend`, options);
  }
}

/** The backend could not answer (down, timed out, refused, unreadable). Never carries a value. */
export class BackendUnavailable extends Error {
  override readonly name = 'BackendUnavailable';
  constructor(readonly backend: string, detail: string, options?: ErrorOptions) {
    super(`${backend} backend unavailable: ${detail}`, options);
  }
}

/**
 * The backend answered, and the answer is no for this one name: a policy that does not allow it, a field that is
 * not there, an ambiguous title, a file others may read. Refused like an outage (503), but never bridged with a
 * stale value (the value is withdrawn, not unreachable) and never backing off the names the backend still serves.
 */
export class BackendRefused extends BackendUnavailable {
  override readonly name = 'BackendUnavailable';
  readonly refused = true;
}
