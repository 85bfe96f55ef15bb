/** The audit log as a file: opened for O_DSYNC appends (refused when others can write it), its tail read, bytes written whole. */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { headAfter, type ChainHead } from './chain.js';
import { AuditWriteFailed } from './errors.js';

/** The errno code of a failure (EFBIG, ENOSPC, EIO…), from it or its causes; never its message, which names paths. */
export function errnoCode(err: Error): string {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]{1,15}$/.test(code)) return code;
  }
  return 'unknown';
}

export async function openForAppend(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    // O_DSYNC makes each write(2) return only once its data is durable, like write + fdatasync, in one call: one
    // trip through libuv's threadpool per batch instead of two (measured: docs/performance.md).
    fh = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ': its directory does not exist' : code === 'EACCES' ? ': permission denied' : '';
    throw new AuditWriteFailed(`${path}${hint}`, { cause: err });
  }
  const mode = (await fh.stat()).mode;
  if ((mode & 0o022) !== 0) {
    await fh.close();
    throw new AuditWriteFailed(`${path} is writable by group or others (run: chmod 600 ${path})`);
  }
  return fh;
}

/** The head of the chain at the end of the file (null when empty) and the torn last line, if there is one. */
export async function readTail(fh: FileHandle): Promise<{ head: ChainHead | null; fragment: string | null }> {
  const size = (await fh.stat()).size;
  if (size === 0) return { head: null, fragment: null };
  // Records are short; 256 KiB always holds the last complete line and any torn fragment after it.
  const length = Math.min(size, 256 * 1024);
  const buf = Buffer.alloc(length);
  await fh.read(buf, 0, length, size - length);
  const text = buf.toString('utf8');
  const cut = text.lastIndexOf('\n') + 1;
  const fragment = cut === text.length ? null : text.slice(cut);
  const lines = text.slice(0, cut).split('\n');
  lines.pop();
  const last = lines.pop();
  return { head: last === undefined ? null : headAfter(last), fragment };
}

export async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  // A short write is legal (a signal, a size limit): keep going until every byte is down or the kernel says no.
  while (offset < buf.length) {
    const { bytesWritten } = await fh.write(buf, offset, buf.length - offset);
    offset += bytesWritten;
  }
}
