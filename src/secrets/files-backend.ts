import { constants } from 'node:fs';
import { open, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendRefused, BackendUnavailable, SecretNotFound } from './errors.js';
import { Secret } from './secret.js';

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * A directory with one file per secret: a mounted Kubernetes Secret, External Secrets Operator's target, the Secrets
 * Store CSI driver, Vault Agent templates. Read at each fetch (the cache decides how often), so a rotation needs no
 * restart. Kubernetes swaps a whole new set in at once: `NAME` is a link to `..data/NAME` and `..data` a link to a
 * timestamped directory that is replaced by one rename; a read that lands between the swap and the old directory's
 * removal is tried once more. A link that leads out of the directory, or a file group or others may read, is refused.
 */
export class FilesBackend implements SecretsBackend {
  readonly type = 'files';
  readonly #dir: string;
  readonly #root: string;

  private constructor(dir: string, root: string) {
    this.#dir = dir;
    this.#root = root;
  }

  static async open(directory: string): Promise<FilesBackend> {
    let root: string;
    try {
      root = await realpath(directory);
      if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new BackendConfigError(`files backend: ${directory} is not a readable directory (backend.config.directory)`);
    }
    const unsafe = await unsafeDirectory(root);
    if (unsafe !== null) throw new BackendConfigError(`files backend: ${directory} ${unsafe}`);
    return new FilesBackend(directory, root);
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    // A name is a file name here: never let one walk out of the directory, or name Kubernetes' own `..data`.
    if (!NAME.test(name)) throw new SecretNotFound(name);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#read(name);
      } catch (err) {
        if (err instanceof BackendUnavailable || err instanceof SecretNotFound) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt === 0) continue; // a swap removed the directory the link led to: once more
        if (code === 'ENOENT') throw new SecretNotFound(name);
        throw new BackendUnavailable('files', `${path.join(this.#dir, name)} cannot be read (${code ?? 'error'})`);
      }
    }
  }

  async #read(name: string): Promise<Secret> {
    const file = path.join(this.#dir, name);
    const real = await realpath(file);
    if (!this.#inside(real)) throw new BackendRefused('files', `${file} leads out of ${this.#dir}: refused`);
    // The resolved path, opened without following a link at its end. A directory on the way could still be swapped
    // for a link between the check and the open: what the kernel says was opened is checked again.
    const fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const opened = await readlink(`/proc/self/fd/${fh.fd}`);
      if (!this.#inside(opened)) throw new BackendRefused('files', `${file} led out of ${this.#dir} while it was opened (a directory was swapped for a link): refused`);
      const st = await fh.stat();
      if (!st.isFile()) throw new BackendRefused('files', `${file} is not a regular file`);
      if ((st.mode & 0o077) !== 0) throw new BackendRefused('files', `${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): refused; mount it 0400 (Kubernetes: defaultMode: 0400) or chmod 400`);
      if (st.uid !== 0 && st.uid !== process.getuid?.()) throw new BackendRefused('files', `${file} belongs to uid ${st.uid}, neither root nor keyswap's user: refused`);
      const unsafe = path.dirname(opened) === this.#root ? null : await unsafeDirectory(path.dirname(opened));
      if (unsafe !== null) throw new BackendRefused('files', `${path.dirname(opened)} ${unsafe}`);
      const value = (await fh.readFile('utf8')).replace(/\r?\n$/, '');
      if (value === '') throw new SecretNotFound(name);
      return new Secret(value);
    } finally {
      await fh.close();
    }
  }

  #inside(p: string): boolean {
    return p.startsWith(`${this.#root}${path.sep}`);
  }

  async list(_ctx: FetchContext): Promise<readonly string[]> {
    return (await readdir(this.#dir)).filter((n) => NAME.test(n)).sort();
  }
}

/**
 * Why a directory may not hold secrets, or null: one that another user owns, or that group or others may write
 * (they could put a file or a link in it that keyswap would read as a secret), unless it is on a read-only mount
 * (Kubernetes mounts a Secret volume 1777 on a read-only tmpfs).
 */
async function unsafeDirectory(dir: string): Promise<string | null> {
  const st = await stat(dir);
  if (st.uid !== 0 && st.uid !== process.getuid?.()) return `belongs to uid ${st.uid}, neither root nor keyswap's user: refused`;
  if ((st.mode & 0o022) !== 0 && !(await onReadOnlyMount(dir))) return `is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}) on a writable mount: anyone who can write there chooses the secrets; chmod go-w it, or mount it read-only`;
  return null;
}

/** Whether the mount `dir` lives on is read-only, from /proc/self/mountinfo (the longest mount point above it). */
async function onReadOnlyMount(dir: string): Promise<boolean> {
  let best: { point: string; ro: boolean } | null = null;
  let text = '';
  try {
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const point = (fields[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const options = (fields[5] ?? '').split(',');
    if (point === '' || !(dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`))) continue;
    if (best === null || point.length >= best.point.length) best = { point, ro: options.includes('ro') };
  }
  return best?.ro ?? false;
}
