/** A backend is configured wrongly (missing file, unsafe permissions, unknown type). A user mistake: exit 2. */
export class BackendConfigError extends Error {
  override readonly name = 'BackendConfigError';
}
