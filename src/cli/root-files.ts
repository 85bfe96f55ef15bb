import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { CliError, EXIT } from './exit-codes.js';

/*
 * Files a command run as root touches in directories someone else controls (the service user owns /var/lib/keyswap;
 * an operator's quick-start state is theirs). Path operations there follow whatever link that someone planted:
 * install used to read /var/lib/keyswap/ca.pem and publish it 0644 (a link to /etc/shadow published the shadow
 * file), and chown a moved file by its path after the rename (a link swapped in between made a root file the service
 * user's). Here every file is opened without following a link, checked on the descriptor it was opened as, and
 * read or changed through that descriptor; a move is a copy from it, never a rename of a name.
 */

type Owner = { readonly uid: number; readonly gid: number };

/** Opens a regular file without following a link; its owner must be one of `owners`, and it must have no other name. */
async function openChecked(file: string, flags: number, owners: readonly number[] | null): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new CliError(`${file} is a symbolic link: refused (a file keyswap moves or reads as root is never reached through a link; remove it and run again)`, EXIT.runtime);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CliError(`${file} is not a regular file: refused`, EXIT.runtime);
    if (st.nlink !== 1) throw new CliError(`${file} has ${st.nlink} names (hard links): refused, as a link to another file could be`, EXIT.runtime);
    if (owners !== null && !owners.includes(st.uid)) throw new CliError(`${file} is owned by uid ${st.uid}, not by ${owners.map((u) => (u === 0 ? 'root' : `uid ${u}`)).join(' or ')}: refused`, EXIT.runtime);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The contents of a file only `owners` may have written, read through a descriptor that never followed a link. */
export async function readOwnedFile(file: string, owners: readonly number[], maxBytes: number): Promise<Buffer> {
  const fh = await openChecked(file, constants.O_RDONLY, owners);
  try {
    const st = await fh.stat();
    if (st.size > maxBytes) throw new CliError(`${file} is ${st.size} bytes, more than such a file holds: refused`, EXIT.runtime);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * Moves `src` to `dst`, owned by `owner` with `mode`. Never a rename: the name `src` may point elsewhere by the time
 * a rename runs (a link swapped in after the checks, and the link, not the checked file, lands at `dst`). The
 * contents are copied from the descriptor that was checked into a file created exclusively at `dst` (never through
 * a link; whatever was there is removed first), set up on its own descriptor, synced; then `src` goes.
 */
export async function moveOwned(src: string, dst: string, owner: Owner, modeOrKeep: number | null, owners: readonly number[] | null = null): Promise<void> {
  const fh = await openChecked(src, constants.O_RDONLY, owners);
  try {
    const mode = modeOrKeep ?? (await fh.stat()).mode & 0o777;
    const contents = await fh.readFile();
    await unlink(dst).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const out = await open(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await out.writeFile(contents);
      await out.chown(owner.uid, owner.gid);
      await out.chmod(mode);
      await out.sync();
    } finally {
      await out.close();
    }
    await unlink(src);
  } finally {
    await fh.close();
  }
}

/** Sets a file's owner and mode through a descriptor opened without following a link (a file already in place). */
export async function setOwned(file: string, owner: Owner, mode: number, owners: readonly number[]): Promise<void> {
  const fh = await openChecked(file, constants.O_RDONLY, owners);
  try {
    await fh.chown(owner.uid, owner.gid);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}
