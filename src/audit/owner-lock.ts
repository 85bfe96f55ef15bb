import { acquireFileLock, LockBusy, LockDamaged } from '../file-lock.js';
import { AuditLogBusy, AuditWriteFailed } from './errors.js';

/**
 * One writer per audit log: two processes appending to one file would each continue the hash chain from their
 * own head and break it (K6). The lock (`<log>.lock.d`) outlives a crash only as long as its holder: a writer
 * killed with -9 leaves it to the next one.
 */
export async function lockAuditLog(path: string): Promise<() => Promise<void>> {
  try {
    return await acquireFileLock(path, { waitMs: 0 });
  } catch (err) {
    if (err instanceof LockBusy) throw new AuditLogBusy(`audit log ${path} is being written by another keyswap (process ${err.holder}${err.elsewhere ? ' of another pid namespace' : ''}); stop it, or give this one its own audit.path`);
    if (err instanceof LockDamaged) throw new AuditLogBusy(err.message);
    throw new AuditWriteFailed(`${path}.lock.d: cannot take the writer lock`, { cause: err });
  }
}
