import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';

/** A fresh private directory for one test's files: a config, a state directory, an audit log, a store. */
export interface TempWorld {
  readonly dir: string;
  /** A path inside the world. */
  path(...parts: string[]): string;
  /** Writes a file inside the world and returns its path; `mode` only when the test cares about it. */
  write(name: string, content: string | Buffer, mode?: number): string;
  read(name: string): string;
  remove(): void;
}

/** A temp world the caller removes (for one shared by a file's tests, made in beforeAll or at module level). */
export function makeTempWorld(label: string): TempWorld {
  const dir = mkdtempSync(path.join(tmpdir(), `keyswap-${label}-`));
  const at = (...parts: string[]): string => path.join(dir, ...parts);
  return {
    dir,
    path: at,
    write(name, content, mode) {
      const file = at(name);
      writeFileSync(file, content, mode === undefined ? undefined : { mode });
      return file;
    },
    read: (name) => readFileSync(at(name), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A temp world removed when the current test finishes (call it inside a test or a beforeEach). */
export function tempWorld(label: string): TempWorld {
  const w = makeTempWorld(label);
  onTestFinished(() => w.remove());
  return w;
}
