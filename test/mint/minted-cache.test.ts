import { describe, expect, it } from 'vitest';
import { MintedCache } from '../../src/mint/minted-cache.js';
import { Secret } from '../../src/secret.js';

// The minted-credential cache on a fake clock: one mint per key in flight, never served past use-by, renewed
// ahead in the background, keyed so that a rotated input is a new key.
function world() {
  let now = 1_000_000;
  const cache = new MintedCache({ now: () => now, refreshAheadMs: 60_000, minLifetimeMs: 5_000 });
  const mints: string[] = [];
  const running: Promise<unknown>[] = [];
  const mint = (lifetimeMs: number) => (trigger: 'request' | 'refresh_ahead') => {
    const minted = (async () => {
      mints.push(trigger);
      // Answers on a later turn of the event loop, as an authority does.
      await new Promise((r) => setImmediate(r));
      const value = new Secret(`tok-${mints.length}`);
      return { value, expiresAtMs: now + lifetimeMs, useByMs: now + lifetimeMs - 10_000 };
    })();
    running.push(minted);
    return minted;
  };
  /** Resolves once every mint started so far has finished and the cache has taken its result. */
  const settled = async (): Promise<void> => {
    await Promise.allSettled(running);
    await new Promise((r) => setImmediate(r));
  };
  return { cache, mints, mint, settled, advance: (ms: number) => { now += ms; } };
}

describe('MintedCache', () => {
  it('concurrent cold requests share one mint', async () => {
    const w = world();
    const got = await Promise.all(Array.from({ length: 50 }, () => w.cache.get('k', w.mint(600_000))));
    expect(new Set(got.map((s) => s.reveal()))).toEqual(new Set(['tok-1']));
    expect(w.mints).toEqual(['request']);
  });

  it('serves until use-by, renews in the background within refresh-ahead, and never serves past use-by', async () => {
    const w = world();
    const m = w.mint(600_000);
    expect((await w.cache.get('k', m)).reveal()).toBe('tok-1');
    w.advance(540_000); // 50 s before use-by: inside refresh-ahead
    expect((await w.cache.get('k', m)).reveal()).toBe('tok-1');
    await w.settled();
    expect(w.mints).toEqual(['request', 'refresh_ahead']);
    expect((await w.cache.get('k', m)).reveal()).toBe('tok-2');
    w.advance(600_001); // past tok-2's use-by: the next request waits for a new one
    expect((await w.cache.get('k', m)).reveal()).toBe('tok-3');
    expect(w.mints).toEqual(['request', 'refresh_ahead', 'request']);
  });

  it('a credential that would live less than the minimum is used once and not cached', async () => {
    const w = world();
    const m = w.mint(12_000); // use-by 2 s away
    await w.cache.get('k', m);
    await w.cache.get('k', m);
    expect(w.mints).toEqual(['request', 'request']);
  });

  it('a failed mint is shared by the requests that waited for it, and not retried before its backoff (1 s, doubling)', async () => {
    const w = world();
    let calls = 0;
    const failing = async () => { calls++; await new Promise((r) => setImmediate(r)); throw new Error('down'); };
    const results = await Promise.allSettled([w.cache.get('k', failing), w.cache.get('k', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    for (let i = 0; i < 20; i++) await expect(w.cache.get('k', failing)).rejects.toThrow('down');
    expect(calls).toBe(1);
    w.advance(1_000);
    await expect(w.cache.get('k', failing)).rejects.toThrow('down');
    expect(calls).toBe(2);
    w.advance(1_000); // the backoff is now 2 s
    await expect(w.cache.get('k', failing)).rejects.toThrow('down');
    expect(calls).toBe(2);
    w.advance(1_000);
    const ok = w.mint(600_000);
    expect((await w.cache.get('k', ok)).reveal()).toMatch(/^tok-/);
  });

  it('keys differ when any input differs, and hold no plain digest of them', () => {
    const a = new MintedCache();
    const b = new MintedCache();
    expect(a.keyOf(['spec', 'secret-1'])).not.toBe(a.keyOf(['spec', 'secret-2']));
    expect(a.keyOf(['ab', 'c'])).not.toBe(a.keyOf(['a', 'bc']));
    expect(a.keyOf(['spec', 'secret-1'])).not.toBe(b.keyOf(['spec', 'secret-1']));
  });

});
