import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, loadConfig, LooseWriteAccessError } from '../../src/config/index.js';
import { tempWorld } from '../helpers/temp-world.js';

// Issue #18 item 7, attacked: configs that pass the write-access check although someone other than keyswap's user
// (and root) can change what keyswap reads. Each test here failed when it was written.

const CONFIG = 'version: 1\nbackend: { type: env }\nsecrets: {}\n';
const isRoot = process.getuid?.() === 0;

function base(): string {
  const { dir } = tempWorld('wa-attack');
  chmodSync(dir, 0o755);
  return dir;
}

async function refused(file: string): Promise<boolean> {
  try {
    await loadConfig(file);
    return false;
  } catch (err) {
    if (err instanceof ConfigErrors && err.errors.some((e) => e instanceof LooseWriteAccessError)) return true;
    throw err;
  }
}

describe('loadConfig() refuses a config someone else could change', () => {
  it('in a directory its group can write (no sticky bit): a group member renames it and puts theirs there', async () => {
    const dir = base();
    const file = path.join(dir, 'keyswap.yaml');
    writeFileSync(file, CONFIG, { mode: 0o644 });
    chmodSync(dir, 0o775);
    expect(await refused(file)).toBe(true);
  });

  it('under a directory others can write, two levels up: they rename the directory holding it', async () => {
    const dir = base();
    chmodSync(dir, 0o777);
    const sub = path.join(dir, 'etc');
    mkdirSync(sub, { mode: 0o755 });
    const file = path.join(sub, 'keyswap.yaml');
    writeFileSync(file, CONFIG, { mode: 0o644 });
    expect(await refused(file)).toBe(true);
  });

  it('reached through a symlink that lives in a directory others can write: they repoint the middle link', async () => {
    const dir = base();
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const safe = path.join(dir, 'safe');
    mkdirSync(safe, { mode: 0o755 });
    writeFileSync(path.join(safe, 'real.yaml'), CONFIG, { mode: 0o644 });
    symlinkSync(path.join(safe, 'real.yaml'), path.join(open, 'hop.yaml'));
    symlinkSync(path.join(open, 'hop.yaml'), path.join(dir, 'keyswap.yaml'));
    expect(await refused(path.join(dir, 'keyswap.yaml'))).toBe(true);
  });

  it("reached through a symlink whose target climbs out of another symlink with '..': the kernel goes where that link leads, not where the text reads", async () => {
    // safe/keyswap.yaml -> "safe/cfg/../keyswap.yaml", and safe/cfg -> open/inner. Read lexically the target is
    // safe/keyswap.yaml again; the kernel follows cfg first, so '..' climbs to open/, which others can write.
    const dir = base();
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    mkdirSync(path.join(open, 'inner'), { mode: 0o755 });
    writeFileSync(path.join(open, 'keyswap.yaml'), CONFIG, { mode: 0o644 });
    const safe = path.join(dir, 'safe');
    mkdirSync(safe, { mode: 0o755 });
    symlinkSync(path.join(open, 'inner'), path.join(safe, 'cfg'));
    symlinkSync(`${safe}/cfg/../keyswap.yaml`, path.join(safe, 'keyswap.yaml'));
    expect(await refused(path.join(safe, 'keyswap.yaml'))).toBe(true);
  });

  it.skipIf(!isRoot)('owned by another user (0644): its owner can write it whatever the mode', async () => {
    const dir = base();
    const file = path.join(dir, 'keyswap.yaml');
    writeFileSync(file, CONFIG, { mode: 0o644 });
    chownSync(file, 65534, 65534);
    expect(await refused(file)).toBe(true);
  });

  it.skipIf(!isRoot)('in a directory owned by another user (0755): its owner can replace the file', async () => {
    const dir = base();
    const theirs = path.join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o755 });
    const file = path.join(theirs, 'keyswap.yaml');
    writeFileSync(file, CONFIG, { mode: 0o644 });
    chownSync(theirs, 65534, 65534);
    expect(await refused(file)).toBe(true);
  });
});
