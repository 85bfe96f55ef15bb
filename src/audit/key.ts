import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AuditKey } from './chain.js';
import { AuditKeyError } from './errors.js';

/**
 * Reads the audit key (32 bytes, base64) from a file only keyswap's user can read, creating it (0600) when asked
 * and missing. Whoever can read it can rewrite the log undetected, so a loose file is refused.
 */
export async function loadAuditKey(file: string, opts: { create: boolean }): Promise<AuditKey> {
  for (;;) {
    let text: string;
    try {
      const mode = (await stat(file)).mode;
      if ((mode & 0o077) !== 0) throw new AuditKeyError(`${file}: the audit key is readable by group or others (run: chmod 600 ${file})`);
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (!opts.create) throw new AuditKeyError(`${file}: no audit key there; verifying needs the key keyswap wrote the log with (--key FILE)`);
      // A name that exists but does not resolve (a dangling symlink) would make every create fail with EEXIST.
      if (await lstat(file).then(() => true, () => false)) throw new AuditKeyError(`${file} is a symlink to a missing file; remove it, or restore the key it names`);
      await createKey(file); // made, or another process made it first: either way, read what is there
      continue;
    }
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== 32) throw new AuditKeyError(`${file}: does not hold a 32-byte base64 audit key`);
    return new AuditKey(key);
  }
}

/**
 * Creates the key file whole and only if none exists (link(2) refuses an existing name): two processes starting
 * at once must not each write a key and have the log chained under the one that lost.
 */
async function createKey(file: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      await fh.writeFile(`${randomBytes(32).toString('base64')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const dir = await open(path.dirname(file), constants.O_RDONLY);
  await dir.sync().finally(() => dir.close());
}
