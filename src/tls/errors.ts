/** The CA state on disk is missing, unsafe or unreadable. The message names the path and the fix. */
export class TlsStateError extends Error {
  override readonly name = 'TlsStateError';
}
