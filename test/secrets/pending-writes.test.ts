import { describe, expect, it } from 'vitest';
import type { SecretCache } from '../../src/secrets/cache.js';
import { PendingWrites, Secret } from '../../src/secrets/index.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Found attacking issue #33's fix: a retry of a pending refresh token (R1) that waited on the store's lock landed
 * after a newer rotated token (R2) had been saved, so the store ended with R1, which the provider revoked when it
 * issued R2, and R2 was kept nowhere. Writes of a name now run in turn, each with the newest value.
 */
describe('PendingWrites: writes of one name run in turn, newest last', () => {
  it('a retry of an older token held on the lock never lands after a newer one', async () => {
    const w = tempWorld('pending');
    let stored = 'R0';
    let mode: 'fail' | 'hold' | 'ok' = 'fail';
    let release: (() => void) | null = null;
    const cache = {
      get: async () => new Secret(stored),
      store: async (_name: string, v: Secret) => {
        if (mode === 'fail') throw new Error('lock busy');
        if (mode === 'hold' && release === null) await new Promise<void>((r) => { release = r; }); // the lock, held
        stored = v.reveal();
      },
    } as unknown as SecretCache;
    const pw = await PendingWrites.open(cache, w.path('pending-writes.json'), { warn() {}, info() {} });
    expect(await pw.store('RT', new Secret('R1'))).toBe('pending');
    mode = 'hold';
    await new Promise((r) => setTimeout(r, 1200)); // the retry (after 1 s) now waits for the lock
    expect(release).not.toBeNull();
    const newer = pw.store('RT', new Secret('R2')); // the next exchange rotated R1 into R2
    expect((await pw.get('RT')).reveal()).toBe('R2'); // in force at once, while the older write still waits
    (release as unknown as () => void)();
    expect(await newer).toBe('written');
    await pw.close();
    expect(stored).toBe('R2');
    expect((await pw.get('RT')).reveal()).toBe('R2');
    expect(pw.summary()).toEqual([]);
  });
});
