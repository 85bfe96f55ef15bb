import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

/** An operator's symlink keyswap will not write through: its target is missing, or not a regular file of this user. */
export class UnsafeWritePath extends Error {
  override readonly name = 'UnsafeWritePath';
}

/**
 * Replaces `file` so that a crash at any moment leaves either the old content or the new one, never a mix:
 * a temp file created with its final mode (O_EXCL, so nothing else can have it open), fsync, rename over the
 * target, fsync of the directory so the rename itself is durable. A temp file is removed whatever fails. Shared by
 * every place keyswap writes state (CA key, encrypted store and its key, the config when `keyswap client` edits it).
 *
 * A symlink at `file` is replaced, never written through, unless the caller writes a file an operator may keep
 * elsewhere on purpose (a key file on another volume, a passphrase file, the store, the config, .env) and says so
 * with `followOperatorLink`: then resolveWriteTarget decides. Only those names ever follow a link, so renaming an
 * operator's link (`store.key` → `ca-bundle.pem`) cannot make keyswap overwrite what it points to.
 */
export async function writeFileAtomic(file: string, content: string | Buffer, mode: number, opts: { readonly followOperatorLink?: boolean } = {}): Promise<void> {
  const target = opts.followOperatorLink === true ? await resolveWriteTarget(file) : file;
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  const dir = await open(path.dirname(target), constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * The file a write to `file` replaces. A symlink made by this user or root is the operator's (a key file kept on
 * another volume): the file it names is written, in its own directory, and it must exist and be a regular file
 * of this user, or the write is refused. A symlink made by anyone else was planted by whoever can write the
 * directory (to have keyswap overwrite `ca-bundle.pem`'s target, say the audit log): it is replaced, and nothing is
 * written through it.
 */
export async function resolveWriteTarget(file: string): Promise<string> {
  let link;
  try {
    link = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return file;
    throw err;
  }
  if (!link.isSymbolicLink()) return file;
  const uid = process.getuid?.();
  if (uid !== undefined && link.uid !== uid && link.uid !== 0) return file;
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    throw new UnsafeWritePath(`${file} is a symlink to a missing file; keyswap does not create files through symlinks (remove it, or point it at an existing file)`);
  }
  const st = await stat(real);
  if (!st.isFile() || (uid !== undefined && st.uid !== uid)) {
    throw new UnsafeWritePath(`${file} is a symlink to ${real}, which is not a regular file owned by this user; keyswap does not write through it (remove the symlink)`);
  }
  return real;
}
