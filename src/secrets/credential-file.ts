import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * A file that holds what unlocks a backend (a Vault token, an AppRole secret id, a 1Password Connect token): read
 * without following a link at its last component, refused when group or others may read it (`private`), trimmed.
 * Returns the problem in words (never the content) so the caller decides whether it is a start error or an outage.
 */
export async function readCredentialFile(file: string, opts: { readonly private: boolean }): Promise<{ value: string } | { problem: string }> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return { problem: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { problem: `${file} is not a regular file` };
    if (opts.private && (st.mode & 0o077) !== 0) return { problem: `${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}` };
    const value = (await fh.readFile('utf8')).trim();
    if (value === '') return { problem: `${file} is empty` };
    return { value };
  } finally {
    await fh.close();
  }
}
