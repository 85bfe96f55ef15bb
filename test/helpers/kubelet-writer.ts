import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes a new set of files as the kubelet's atomic writer does: a new directory, then `..data` renamed over. */
export function kubeletWrite(dir: string, generation: number, files: Record<string, string>, mode = 0o400): void {
  const data = path.join(dir, `..gen_${generation}`);
  mkdirSync(data);
  for (const [name, value] of Object.entries(files)) {
    writeFileSync(path.join(data, name), value, { mode });
    chmodSync(path.join(data, name), mode);
  }
  symlinkSync(`..gen_${generation}`, path.join(dir, '..data_tmp'));
  renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  for (const name of Object.keys(files)) {
    try {
      symlinkSync(path.join('..data', name), path.join(dir, name));
    } catch {
      // already linked from an earlier generation
    }
  }
  if (generation > 1) rmSync(path.join(dir, `..gen_${generation - 1}`), { recursive: true, force: true });
}
