import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, lstat, mkdir, readdir, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveWriteTarget } from './atomic-file.js';

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
  /** The holder's pid as its own pid namespace numbers it (another container's, when `elsewhere`). */
  constructor(readonly target: string, readonly holder: number, readonly elsewhere: boolean) {
    super(`${target} is locked by process ${holder}${elsewhere ? ' of another pid namespace (another container)' : ''}`);
  }
}

/** The lock directory holds something no keyswap wrote: only the operator can say it is safe to clear. */
export class LockDamaged extends Error {
  override readonly name = 'LockDamaged';
}

export interface LockOptions {
  /** How long to wait for a live holder before giving up with LockBusy (0: do not wait). */
  readonly waitMs: number;
}

type State = { readonly kind: 'free' } | { readonly kind: 'held'; readonly pid: number; readonly start: string; readonly ns: string } | { readonly kind: 'gone' };

const POLL_MS = 20;
const WIDTH = 12;
/** Our pid namespace: a holder recorded in another one (a second container on the same volume) cannot be judged dead. */
const OWN_NS = pidNamespace();

/** Takes the lock on `target` (waiting up to waitMs for a live holder); resolves to the function that frees it. */
export async function acquireFileLock(target: string, opts: LockOptions): Promise<() => Promise<void>> {
  // One file, one lock, whatever name a writer reaches it by (a symlink, or its real path).
  const dir = `${await realTarget(target)}.lock.d`;
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    const top = (await generations(dir)).at(-1) ?? 0;
    const state = top === 0 ? ({ kind: 'free' } as const) : await readState(path.join(dir, name(top)));
    if (state.kind === 'gone') continue; // freed and replaced while we looked: look again
    if (state.kind === 'held' && (state.ns !== OWN_NS || isAlive(state.pid, state.start))) {
      if (Date.now() >= deadline) throw new LockBusy(target, state.pid, state.ns !== OWN_NS);
      await new Promise((r) => setTimeout(r, POLL_MS));
      continue;
    }
    const mine = top + 1;
    const entry = path.join(dir, name(mine));
    if (!(await createWhole(dir, entry, `held ${process.pid} ${startTime(process.pid)} ${OWN_NS}\n`))) continue;
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

/** Zero-padded so a listing sorts as numbers do; a number past the padding keeps all its digits. */
function name(gen: number): string {
  return String(gen).padStart(WIDTH, '0');
}

async function generations(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  return names.filter((n) => /^\d{1,15}$/.test(n)).map(Number).sort((a, b) => a - b);
}

async function readState(file: string): Promise<State> {
  let text: string;
  try {
    // A FIFO or a directory planted as a generation would block or fail the read: only a regular file is one.
    if (!(await lstat(file)).isFile()) throw new LockDamaged(`${file} is not a lock entry keyswap wrote (not a regular file); remove it if no keyswap is running`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' };
    throw err;
  }
  const [kind, pid, start, ns] = text.trim().split(' ');
  if (kind === 'held' && pid !== undefined) return { kind: 'held', pid: Number(pid), start: start ?? '-', ns: ns ?? OWN_NS };
  return { kind: 'free' };
}

/** The file the lock is for, as writers name it (atomic-file.ts): through an operator's symlink, its target. */
async function realTarget(target: string): Promise<string> {
  const file = await resolveWriteTarget(target).catch(() => target);
  return path.join(await realpath(path.dirname(file)), path.basename(file));
}

/** The pid namespace's identity (`pid:[4026531836]`), or '-' where there is no /proc. */
function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '-';
  }
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
