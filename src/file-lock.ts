import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A lock between processes on one machine, for the store's read-modify-write and the audit log's single writer.
 * Node has no flock(2); a lock file created with O_EXCL and "taken over" when its holder is dead is what keyswap
 * had, and it is not a lock: a waiter that judges the lock stale and unlinks it can unlink the fresh lock another
 * waiter has just made, and both go on (measured: 156 of 160 increments survived 4 processes).
 *
 * So a lock is a directory of generations, `<target>.lock.d/000000000007`, and nothing anyone else made is ever
 * unlinked to take it. The newest generation tells the state: `held <pid> <start>` or `free`. To take the lock, a
 * process that sees the newest generation free (or held by a dead process) creates the next one with link(2),
 * which fails when that name exists: of all who saw the same state, exactly one wins. Each generation appears
 * whole (written to a temp file first), so no one ever reads a half-written holder. The winner removes
 * generations older than its predecessor; because of that, a process that looked long ago may create an old
 * number again, so every winner checks that its generation is the newest and backs off otherwise.
 */
export class LockBusy extends Error {
  override readonly name = 'LockBusy';
  constructor(readonly target: string, readonly holder: number) {
    super(`${target} is locked by process ${holder}`);
  }
}

export interface LockOptions {
  /** How long to wait for a live holder before giving up with LockBusy (0: do not wait). */
  readonly waitMs: number;
}

type State = { readonly kind: 'free' } | { readonly kind: 'held'; readonly pid: number; readonly start: string } | { readonly kind: 'gone' };

const POLL_MS = 20;
const WIDTH = 12;

/** Takes the lock on `target` (waiting up to waitMs for a live holder); resolves to the function that frees it. */
export async function acquireFileLock(target: string, opts: LockOptions): Promise<() => Promise<void>> {
  const dir = `${target}.lock.d`;
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    const top = (await generations(dir)).at(-1) ?? 0;
    const state = top === 0 ? ({ kind: 'free' } as const) : await readState(path.join(dir, name(top)));
    if (state.kind === 'gone') continue; // freed and replaced while we looked: look again
    if (state.kind === 'held' && isAlive(state.pid, state.start)) {
      if (Date.now() >= deadline) throw new LockBusy(target, state.pid);
      await new Promise((r) => setTimeout(r, POLL_MS));
      continue;
    }
    const mine = top + 1;
    const entry = path.join(dir, name(mine));
    if (!(await createWhole(dir, entry, `held ${process.pid} ${startTime(process.pid)}\n`))) continue;
    const newest = (await generations(dir)).at(-1);
    if (newest !== mine) {
      // We looked before a winner cleaned up and re-made a number it had removed: ours is not the newest.
      await unlink(entry).catch(() => {});
      continue;
    }
    for (const old of (await generations(dir)).filter((g) => g < mine - 1)) await unlink(path.join(dir, name(old))).catch(() => {});
    return () => replaceWhole(dir, entry, 'free\n');
  }
}

function name(gen: number): string {
  return String(gen).padStart(WIDTH, '0');
}

async function generations(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  return names.filter((n) => n.length === WIDTH && /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

async function readState(file: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' };
    throw err;
  }
  const [kind, pid, start] = text.trim().split(' ');
  if (kind === 'held' && pid !== undefined) return { kind: 'held', pid: Number(pid), start: start ?? '-' };
  return { kind: 'free' };
}

/** Creates `entry` holding `content`, whole or not at all; false when it exists already (someone else won). */
async function createWhole(dir: string, entry: string, content: string): Promise<boolean> {
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, entry);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** Only the holder rewrites its own generation, so a rename over it races with no one. */
async function replaceWhole(dir: string, entry: string, content: string): Promise<void> {
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
  await rename(tmp, entry).catch(async (err: unknown) => {
    await unlink(tmp).catch(() => {});
    throw err;
  });
}

/**
 * Alive, and the same process that wrote the lock: a pid reused after a restart (a container's pid 1) has another
 * start time. A process of another user (EPERM) counts as alive.
 */
function isAlive(pid: number, start: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === '-') return true;
  const now = startTime(pid);
  return now === '-' || now === start;
}

/** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or '-' where there is no /proc. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '-';
  } catch {
    return '-';
  }
}
