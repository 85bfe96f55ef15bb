import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

/*
 * Linux lets any process of the same user read another's initial environment at /proc/<pid>/environ: the block the
 * kernel laid out at exec, which unsetenv() and `delete process.env.X` never touch. An agent started by
 * `keyswap run` is keyswap's child, so it can read keyswap's block; for the env backend that block holds the real
 * secrets. Yama's default ptrace scope keeps same-user processes out of keyswap's memory (/proc/<pid>/mem needs
 * ptrace attach), but not out of that block. So once keyswap has read what it needs, it overwrites the values in
 * the block itself, through /proc/self/mem, which a process may always write.
 */

export type Cleared = { readonly kind: 'cleared'; readonly names: readonly string[] } | { readonly kind: 'failed'; readonly why: string };

/**
 * Overwrites, in this process's initial environment block, the values of `names` with NUL bytes: what
 * /proc/<pid>/environ shows from then on is `NAME=` and nothing after it. Reads `process.env` for those names return
 * empty strings afterwards, so the caller reads them first (cli/ takes one copy of the environment at start).
 */
export function clearInitialEnvironment(names: readonly string[]): Cleared {
  if (names.length === 0) return { kind: 'cleared', names: [] };
  let fd: number | null = null;
  try {
    // Fields 50 and 51 of /proc/self/stat (Linux 3.5+): where the block starts and ends. comm may hold spaces and
    // parentheses, so fields are counted from the last ')'.
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[47]);
    const end = Number(fields[48]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end <= start || end - start > 4 * 1024 * 1024) return { kind: 'failed', why: 'no environment block in /proc/self/stat' };
    fd = openSync('/proc/self/mem', 'r+');
    const block = Buffer.alloc(end - start);
    if (readSync(fd, block, 0, block.length, start) !== block.length) return { kind: 'failed', why: 'environment block unreadable' };
    const wanted = new Set(names);
    const cleared: string[] = [];
    for (let at = 0; at < block.length;) {
      const nul = block.indexOf(0, at);
      const stop = nul < 0 ? block.length : nul;
      const eq = block.indexOf(0x3d, at);
      if (eq > at && eq < stop) {
        const name = block.toString('latin1', at, eq);
        if (wanted.has(name) && stop > eq + 1) {
          const zeros = Buffer.alloc(stop - eq - 1);
          if (writeSync(fd, zeros, 0, zeros.length, start + eq + 1) !== zeros.length) return { kind: 'failed', why: `${name} could not be overwritten` };
          cleared.push(name);
        }
      }
      at = stop + 1;
    }
    return { kind: 'cleared', names: cleared };
  } catch (err) {
    return { kind: 'failed', why: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
