/** An audit record could not be made durable. The request that needed it must not proceed (K4, K5). */
export class AuditWriteFailed extends Error {
  override readonly name = 'AuditWriteFailed';
  constructor(readonly path: string, options?: ErrorOptions) {
    super(`audit log ${path} could not be written`, options);
  }
}

/** The audit key is missing, malformed or readable by others: the chain cannot be written or checked with it. */
export class AuditKeyError extends Error {
  override readonly name = 'AuditKeyError';
}

/** Another live process holds the audit log's writer lock. */
export class AuditLogBusy extends Error {
  override readonly name = 'AuditLogBusy';
}
