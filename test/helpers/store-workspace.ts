import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { readStore, updateStore, type KeySource } from '../../src/secrets/index.js';
import { tempWorld } from './temp-world.js';

/** A 0700 state directory in a fresh temp dir, removed after the test: the store, its key file and a key-file source. */
export function storeWorkspace(): { dir: string; state: string; store: string; key: string; source: KeySource } {
  const { dir } = tempWorld('store');
  const state = path.join(dir, 'state');
  mkdirSync(state, { mode: 0o700 });
  const key = path.join(state, 'store.key');
  return { dir, state, store: path.join(state, 'secrets.enc'), key, source: { kind: 'keyfile', path: key } };
}

/** Sets one entry through the one writer (updateStore). */
export const setEntry = (file: string, source: KeySource, name: string, value: string): Promise<boolean> =>
  updateStore(file, source, (e) => {
    e.set(name, { value, updatedAt: new Date().toISOString() });
    return true;
  });

export const valueOf = async (file: string, source: KeySource, name: string): Promise<string | undefined> => (await readStore(file, source)).entries.get(name)?.value;
