import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import type { ChainHead } from './chain.js';

/**
 * The last head keyswap wrote to a log, kept beside its keys (`<state_dir>/audit.head`), where whoever can write
 * the log directory cannot reach it. At the next start the writer compares the log's tail with it: records cut
 * from the end while keyswap was stopped are recorded (`audit_tail_cut`) instead of silently adopted.
 */
export async function readHeadMark(file: string, log: string): Promise<ChainHead | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const mark = JSON.parse(text) as { path?: unknown; seq?: unknown; hash?: unknown };
    // A mark of another log (audit.path changed) says nothing about this one.
    if (mark.path !== log || typeof mark.seq !== 'number' || typeof mark.hash !== 'string') return null;
    return { seq: mark.seq, hash: mark.hash };
  } catch {
    return null;
  }
}

export async function writeHeadMark(file: string, log: string, head: ChainHead): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify({ path: log, seq: head.seq, hash: head.hash })}\n`, 0o600);
}
