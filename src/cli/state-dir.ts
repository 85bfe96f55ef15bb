import { constants, existsSync } from 'node:fs';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

/**
 * Makes the state directory private (0700, whatever the umask or a checkout gave it), and, inside a git work tree,
 * keeps its key material out of commits: a `.gitignore` of `*` in it, so one `git add -A` cannot publish the store
 * key, the CA key and the store together.
 */
export async function prepareStateDir(dir: string, io: CliIo): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (((await stat(dir)).mode & 0o077) !== 0) await chmod(dir, 0o700);
  if (!insideGitWorkTree(dir)) return;
  const ignore = path.join(dir, '.gitignore');
  try {
    const fh = await open(ignore, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    await fh.writeFile('# keyswap: key material; never commit it\n*\n');
    await fh.close();
    io.stdout.write(`${dir} is inside a git work tree: wrote ${ignore} so its keys are never committed\n`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new CliError(`${dir} is inside a git work tree and ${ignore} cannot be written (${(err as NodeJS.ErrnoException).code ?? 'error'}); refusing to put key material where git add could publish it. Move state_dir out of the repository, or ignore it yourself`, EXIT.runtime);
  }
}

function insideGitWorkTree(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, '.git'))) return true;
    if (path.dirname(d) === d) return false;
  }
}
