import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BackendUnavailable, Secret, SecretCache, SecretNotFound, type SecretsBackend } from '../../src/secrets/index.js';

/** A stand-in for a remote store (the only kind of fake the project allows): counts calls, can fail or hang. */
class RemoteStore implements SecretsBackend {
  readonly type = 'remote';
  calls = 0;
  values = new Map<string, string>([['A', 'value-1']]);
  mode: 'ok' | 'down' | 'hang' = 'ok';
  async fetch(name: string): Promise<Secret> {
    this.calls++;
    // Answers on a later turn of the event loop, as a remote does: concurrent callers overlap without a guessed latency.
    await new Promise((r) => setImmediate(r));
    if (this.mode === 'down') throw new BackendUnavailable('remote', 'connection refused');
    if (this.mode === 'hang') return new Promise(() => {});
    const v = this.values.get(name);
    if (v === undefined) throw new SecretNotFound(name);
    return new Secret(v);
  }
}

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

const base = { ttlMs: 300_000, jitterMs: 30_000, maxEntries: 100, maxStaleMs: 0 };

describe('SecretCache', () => {
  it('100 concurrent requests on a cold cache cost exactly one backend call (K8)', async () => {
    const store = new RemoteStore();
    const cache = new SecretCache(store, base);
    const got = await Promise.all(Array.from({ length: 100 }, () => cache.get('A')));
    expect(store.calls).toBe(1);
    expect(new Set(got.map((s) => s.reveal()))).toEqual(new Set(['value-1']));
  });

  it('a rotated secret is used once the TTL (plus at most the jitter) has passed (K8)', async () => {
    const store = new RemoteStore();
    const c = clock();
    const cache = new SecretCache(store, { ...base, now: c.now, random: () => 1 });
    expect((await cache.get('A')).reveal()).toBe('value-1');
    store.values.set('A', 'value-2');
    c.advance(300_000 - 1);
    expect((await cache.get('A')).reveal()).toBe('value-1'); // inside TTL + jitter (random=1 → +30 s)
    c.advance(30_001);
    expect((await cache.get('A')).reveal()).toBe('value-2');
  });

  it('jitter is clamped to half the TTL', async () => {
    const store = new RemoteStore();
    const c = clock();
    const cache = new SecretCache(store, { ...base, ttlMs: 10_000, jitterMs: 60_000, now: c.now, random: () => 0 });
    await cache.get('A');
    c.advance(10_000 - 5_000); // random=0 → −jitter; clamped jitter is 5 s
    await cache.get('A');
    expect(store.calls).toBe(2);
  });

  it('a flush during an in-flight fetch means that fetch is not cached', async () => {
    const store = new RemoteStore();
    const cache = new SecretCache(store, base);
    const first = cache.get('A');
    cache.flush();
    await first;
    await cache.get('A');
    expect(store.calls).toBe(2);
  });

  it('a 30 s outage with 1000 requests costs at most 8 backend calls (backoff 1, 2, 4, 8, 16 s, capped at 30 s)', async () => {
    const store = new RemoteStore();
    store.mode = 'down';
    const c = clock();
    const cache = new SecretCache(store, { ...base, now: c.now, random: () => 1 });
    for (let i = 0; i < 1000; i++) {
      await expect(cache.get('A')).rejects.toBeInstanceOf(BackendUnavailable);
      c.advance(30);
    }
    expect(store.calls).toBeLessThanOrEqual(8);
    expect(store.calls).toBeGreaterThanOrEqual(4);
  });

  it('max-stale serves the old value while the backend fails, then stops serving (fail closed)', async () => {
    const store = new RemoteStore();
    const c = clock();
    const cache = new SecretCache(store, { ...base, jitterMs: 0, maxStaleMs: 60_000, now: c.now });
    await cache.get('A');
    store.mode = 'down';
    c.advance(300_001);
    expect((await cache.get('A')).reveal()).toBe('value-1');
    c.advance(60_000);
    await expect(cache.get('A')).rejects.toBeInstanceOf(BackendUnavailable);
  });

  it('without max-stale nothing is served past the TTL', async () => {
    const store = new RemoteStore();
    const c = clock();
    const cache = new SecretCache(store, { ...base, jitterMs: 0, now: c.now });
    await cache.get('A');
    store.mode = 'down';
    c.advance(300_001);
    await expect(cache.get('A')).rejects.toBeInstanceOf(BackendUnavailable);
  });

  it('a backend that never answers fails closed after the fetch timeout', async () => {
    const store = new RemoteStore();
    store.mode = 'hang';
    const cache = new SecretCache(store, { ...base, fetchTimeoutMs: 50 });
    await expect(cache.get('A')).rejects.toThrow(/no answer within 50 ms/);
  });

  it('an unknown name is SecretNotFound, remembered only briefly', async () => {
    const store = new RemoteStore();
    const c = clock();
    const cache = new SecretCache(store, { ...base, now: c.now });
    await expect(cache.get('B')).rejects.toBeInstanceOf(SecretNotFound);
    await expect(cache.get('B')).rejects.toBeInstanceOf(SecretNotFound);
    expect(store.calls).toBe(1);
    store.values.set('B', 'now-there');
    c.advance(1_001);
    expect((await cache.get('B')).reveal()).toBe('now-there');
  });

  it('a Secret never shows its value through String(), JSON or inspect', () => {
    const s = new Secret('canary-value');
    expect(`${s}`).toBe('[secret]');
    expect(JSON.stringify({ s })).toBe('{"s":"[secret]"}');
    expect(inspect(s)).toBe('[secret]');
  });
});
