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
