import path from 'node:path';
import { writeHeadMark, type AuditWriter } from '../audit/index.js';
import type { Logger } from '../log.js';

/** Where serve keeps the audit log's last head between runs. */
export function headMarkFile(stateDir: string): string {
  return path.join(stateDir, 'audit.head');
}

/**
 * The anchors outside the audit file (K6): the head goes to keyswap's own log (the journal under systemd), where
 * `audit verify --head` can check it, and to the state directory, where the next start checks the log's tail
 * against it. `mark()` at start, after a rotation and at stop; a timer marks every minute the head moved.
 */
export function anchorAuditHead(audit: AuditWriter, logPath: string, markFile: string, log: Logger): { mark(): Promise<void>; stop(): void } {
  let marked = '';
  const mark = async (): Promise<void> => {
    const head = audit.head;
    if (`${head.seq}:${head.hash}` === marked) return;
    marked = `${head.seq}:${head.hash}`;
    log.info({ audit_head: marked, path: logPath }, 'audit head');
    await writeHeadMark(markFile, logPath, head).catch((err: unknown) => log.error({ err: (err as Error).message }, 'audit head mark not written'));
  };
  const timer = setInterval(() => void mark(), 60_000).unref();
  return { mark, stop: () => clearInterval(timer) };
}
