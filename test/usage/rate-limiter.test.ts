import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/usage/index.js';

const THREE_A_MINUTE = { count: 3, perMs: 60_000 };

describe('RateLimiter (binding rate: limits)', () => {
  it('a full bucket allows `count` at once, then says how long until the next token', () => {
    const r = new RateLimiter();
    expect([0, 0, 0].map((t) => r.take('k', THREE_A_MINUTE, t).ok)).toEqual([true, true, true]);
    expect(r.take('k', THREE_A_MINUTE, 0)).toEqual({ ok: false, retryAfterMs: 20_000 });
    expect(r.take('k', THREE_A_MINUTE, 5_000)).toEqual({ ok: false, retryAfterMs: 15_000 });
  });

  it('tokens come back at count per period, never beyond count', () => {
    const r = new RateLimiter();
    for (let i = 0; i < 3; i++) r.take('k', THREE_A_MINUTE, 0);
    expect(r.take('k', THREE_A_MINUTE, 20_000).ok).toBe(true);
    expect(r.take('k', THREE_A_MINUTE, 20_000).ok).toBe(false);
    // An hour idle refills to three, not to sixty.
    expect([1, 2, 3, 4].map(() => r.take('k', THREE_A_MINUTE, 3_620_000).ok)).toEqual([true, true, true, false]);
  });

  it('keys do not share a bucket', () => {
    const r = new RateLimiter();
    for (let i = 0; i < 3; i++) r.take('client-a', THREE_A_MINUTE, 0);
    expect(r.take('client-a', THREE_A_MINUTE, 0).ok).toBe(false);
    expect(r.take('client-b', THREE_A_MINUTE, 0).ok).toBe(true);
  });
});
