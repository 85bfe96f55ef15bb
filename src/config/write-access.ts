import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';

/** Why someone other than keyswap's user (or root) could change what keyswap reads from a file, and the fix. */
export interface LooseWriteAccess {
  readonly finding: string;
  readonly fix: string;
}

/** Symlinks followed before giving up, as the kernel does (ELOOP). */
const MAX_LINKS = 40;

/**
 * Whether anyone but keyswap's user and root can change what `file` holds: the file itself, or any directory on
 * the way to it (every ancestor, and every directory a symlink on the way leads through), being owned by another
 * user or writable by group or others. A sticky directory (as /tmp) is fine: others may add entries there but
 * not rename or delete ours. A path that cannot be walked (missing) yields null: whoever reads it reports that.
 */
export async function looseWriteAccess(file: string): Promise<LooseWriteAccess | null> {
  const uid = process.getuid?.();
  // Walked as the kernel resolves it: one component at a time, a symlink's target spliced in where it was found,
  // and `..` taken against the real directory reached so far, never against the text (a `..` after a symlink
  // climbs out of where that link led).
  let pending = path.resolve(file).split(path.sep).filter(Boolean);
  let at: string = path.sep;
  const first = await checkDir(at, uid);
  if (first !== null) return first;
  for (let links = 0; pending.length > 0; ) {
    const [part, ...rest] = pending as [string, ...string[]];
    if (part === '.' || part === '') {
      pending = rest;
      continue;
    }
    if (part === '..') {
      at = path.dirname(at);
      pending = rest;
      continue;
    }
    const next = path.join(at, part);
    const st = await lstat(next).catch(() => null);
    if (st === null) return null;
    if (st.isSymbolicLink()) {
      // A link another user owns: in a sticky directory (as /tmp) that user may delete it and make it point anywhere.
      if (uid !== undefined && st.uid !== uid && st.uid !== 0) return { finding: `reached through ${next}, a symlink owned by another user (uid ${st.uid}), who can point it elsewhere`, fix: `replace ${next} with a link of your own, or name the file it leads to` };
      if (++links > MAX_LINKS) return null;
      const target = await readlink(next);
      // The link's own directory was checked on the way here; its target is walked from where it starts.
      if (path.isAbsolute(target)) at = path.sep;
      pending = [...target.split(path.sep), ...rest];
      continue;
    }
    if (rest.length === 0) return checkEntry(next, st, uid, 'file');
    const bad = checkEntry(next, st, uid, 'directory');
    if (bad !== null) return bad;
    at = next;
    pending = rest;
  }
  return null;
}

async function checkDir(dir: string, uid: number | undefined): Promise<LooseWriteAccess | null> {
  const st = await lstat(dir).catch(() => null);
  return st === null ? null : checkEntry(dir, st, uid, 'directory');
}

function checkEntry(p: string, st: { uid: number; mode: number }, uid: number | undefined, kind: 'file' | 'directory'): LooseWriteAccess | null {
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    return { finding: kind === 'file' ? `owned by another user (uid ${st.uid}), who can change it whatever its mode` : `in ${p}, owned by another user (uid ${st.uid}), who can replace what is in it`, fix: `chown ${uid === 0 ? 'root' : uid} ${p}` };
  }
  const writable = st.mode & 0o022;
  if (writable === 0) return null;
  if (kind === 'file') return { finding: `writable by group or others (mode ${octal(st.mode)})`, fix: `chmod go-w ${p}` };
  // With the sticky bit (as on /tmp) others may create entries there but not rename or delete ours.
  if ((st.mode & 0o1000) !== 0) return null;
  return { finding: `in ${p}, where ${writable & 0o002 ? 'others' : 'its group'} can replace it (mode ${octal(st.mode)}, no sticky bit)`, fix: `chmod go-w ${p}` };
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(3, '0');
}
