import { constants } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { AuditWriteFailed } from './errors.js';

/**
 * One writer per audit log: two processes appending to one file would each continue the hash chain from their
 * own head and break it (K6). `<log>.lock` holds the writer's pid; a lock whose process is gone (kill -9, a
 * restarted container) is taken over.
 */
export async function lockAuditLog(path: string): Promise<() => Promise<void>> {
  const lock = `${path}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => unlink(lock).catch(() => {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AuditWriteFailed(`${lock}: cannot create the writer lock`, { cause: err });
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (holder !== process.pid && (await isKeyswapProcess(holder))) {
        throw new AuditWriteFailed(`${path} is being written by process ${holder} (another keyswap); stop it, or give this one its own audit.path`);
      }
      await unlink(lock).catch(() => {});
    }
  }
  throw new AuditWriteFailed(`${lock}: could not take the writer lock`);
}

/** Alive and a Node process: a pid reused by something else (a restarted container) does not hold the log. */
async function isKeyswapProcess(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  return cmdline === null || /node|keyswap/.test(cmdline);
}
