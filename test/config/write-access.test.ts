import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, loadConfig, LooseWriteAccessError } from '../../src/config/index.js';
import { tempWorld } from '../helpers/temp-world.js';

const CONFIG = 'version: 1\nbackend: { type: env }\nsecrets: {}\n';

/** A config in a fresh private directory, with the mode given (chmod, so the umask plays no part). */
function writeConfig(mode: number, text = CONFIG): { dir: string; file: string } {
  const { dir, write } = tempWorld('mode');
  const file = write('keyswap.yaml', text);
  chmodSync(file, mode);
  return { dir, file };
}

async function refusal(file: string): Promise<LooseWriteAccessError[]> {
  try {
    await loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.filter((e): e is LooseWriteAccessError => e instanceof LooseWriteAccessError);
    throw err;
  }
  return [];
}

describe('loadConfig() refuses a config anyone but its owner could change', () => {
  it.each([
    ['0644, the usual umask 022', 0o644],
    ['0600, private', 0o600],
    ['0640, group may read', 0o640],
    ['0444, read-only', 0o444],
  ])('loads a config whose mode is %s', async (_name, mode) => {
    const { file } = writeConfig(mode);
    expect((await loadConfig(file)).file).toBe(file);
  });

  it.each([
    ['0666, writable by all', 0o666, '666'],
    ['0664, writable by its group', 0o664, '664'],
    ['0646, writable by others only', 0o646, '646'],
  ])('refuses %s, naming the file, its mode and the fix', async (_name, mode, shown) => {
    const { file } = writeConfig(mode);
    const [e, ...rest] = await refusal(file);
    expect(rest).toEqual([]);
    expect(e?.message).toBe(
      `${file}:1: (file): writable by group or others (mode ${shown}): whoever can change it can add bindings, upstream.resolve entries or an extra_ca_file; fix: chmod go-w ${file}`,
    );
    expect(e?.fix).toBe(`chmod go-w ${file}`);
  });

  it('refuses a config in a directory others can write without the sticky bit (they could swap the file)', async () => {
    const { dir, file } = writeConfig(0o644);
    chmodSync(dir, 0o777);
    const [e] = await refusal(file);
    expect(e?.message).toContain(`${file}:1: (file): in ${dir}, where others can replace it (mode 777`);
    expect(e?.fix).toBe(`chmod go-w ${dir}`);
  });

  it('accepts a directory others can write when the sticky bit keeps them from renaming the file (as on /tmp)', async () => {
    const { dir, file } = writeConfig(0o644);
    chmodSync(dir, 0o1777);
    await expect(loadConfig(file)).resolves.toBeDefined();
  });

  it('checks the directory a symlinked config really lives in', async () => {
    const { dir } = writeConfig(0o644);
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    writeFileSync(path.join(open, 'real.yaml'), CONFIG, { mode: 0o644 });
    const link = path.join(dir, 'keyswap.yaml.link');
    symlinkSync(path.join(open, 'real.yaml'), link);
    const [e] = await refusal(link);
    expect(e?.fix).toBe(`chmod go-w ${open}`);
  });

  it('refuses an extra_ca_file others can write, naming its line and field: it decides which upstreams are trusted (K2)', async () => {
    const { dir, file } = writeConfig(0o644, `version: 1\nbackend: { type: env }\nupstream:\n  extra_ca_file: ./ca.pem\nsecrets: {}\n`);
    const ca = path.join(dir, 'ca.pem');
    writeFileSync(ca, 'not read by the loader');
    chmodSync(ca, 0o666);
    const [e] = await refusal(file);
    expect(e?.message).toBe(
      `${file}:4: upstream.extra_ca_file: ${ca} is writable by group or others (mode 666): whoever can change it chooses which upstream certificates keyswap trusts; fix: chmod go-w ${ca}`,
    );
    chmodSync(ca, 0o644);
    await expect(loadConfig(file)).resolves.toBeDefined();
  });

  it('reports a loose mode together with the config mistakes, so one round of fixes is enough', async () => {
    const { file } = writeConfig(0o666, 'version: 2\nsecrets: {}\n');
    const err = await loadConfig(file).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigErrors);
    const messages = (err as ConfigErrors).errors.map((e) => e.message);
    expect(messages[0]).toContain('(file): writable by group or others (mode 666)');
    expect(messages[1]).toContain(`${file}:1: version: must be one of: 1`);
  });
});
