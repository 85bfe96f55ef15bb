import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** Why someone other than a file's owner could change what keyswap reads from it, and the command that stops it. */
export interface LooseWriteAccess {
  readonly finding: string;
  readonly fix: string;
}

/**
 * Whether anyone but the owner can change `file`: the file writable by group or others, or a directory holding it
 * (as named, or after symlinks) writable by others without the sticky bit, so they could rename it and put their
 * own in its place. A file that cannot be stat'ed yields null: whoever reads it reports that.
 */
export async function looseWriteAccess(file: string): Promise<LooseWriteAccess | null> {
  const mode = await stat(file).then((s) => s.mode, () => null);
  if (mode === null) return null;
  if ((mode & 0o022) !== 0) return { finding: `writable by group or others (mode ${octal(mode)})`, fix: `chmod go-w ${file}` };
  const real = await realpath(file).catch(() => file);
  for (const dir of new Set([path.dirname(file), path.dirname(real)])) {
    const dirMode = await stat(dir).then((s) => s.mode, () => null);
    // With the sticky bit (as on /tmp) others may create files there but not rename or delete this one.
    if (dirMode !== null && (dirMode & 0o002) !== 0 && (dirMode & 0o1000) === 0) {
      return { finding: `in ${dir}, where others can replace it (mode ${octal(dirMode)}: writable by others, no sticky bit)`, fix: `chmod o-w ${dir}` };
    }
  }
  return null;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(3, '0');
}
