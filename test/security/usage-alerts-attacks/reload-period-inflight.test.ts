import { describe, expect, it } from 'vitest';
import { UsageMeter, periodOf } from '../../../src/usage/index.js';
import type { QuotaSpec } from '../../../src/config/index.js';

/*
 * A reservation captures the QuotaSpec list it was admitted under (meter.ts:74, 92-95). A reload that changes a
 * quota's period deletes its count (meter.ts:63), but a request admitted before the reload and committed after it
 * recreates the count through `#count(oldSpec)`: with the OLD period's window. `#count` only checks `now >=
 * periodEndMs`, never which period the window belongs to (meter.ts:121-128), so the reloaded quota runs on the old
 * window: a `day` quota that was a `month` quota stays exhausted (Retry-After: weeks) until the month ends, and a
 * `month` quota that was a `day` quota starts over at the next midnight.
 */

const quota = (over: Partial<QuotaSpec> = {}): QuotaSpec => ({ name: 'q', secrets: null, clients: null, limit: 2, period: 'month', warnAt: 0.9, ...over });

describe('attack27: a reload that changes a quota period while a request is on its way', () => {
  it('month -> day: the day quota rolls over at midnight', () => {
    let now = Date.UTC(2026, 11, 7, 10, 0, 0);
    const meter = new UsageMeter([quota({ period: 'month' })], new Map(), () => {}, () => now);
    const a = meter.admit(['A'], null);
    const b = meter.admit(['A'], null);
    if (a.kind !== 'admitted' || b.kind !== 'admitted') throw new Error('not admitted');
    // The operator reloads: same name, period day.
    meter.configure([quota({ period: 'day' })]);
    a.reservation?.commit();
    b.reservation?.commit();
    const state = meter.states()[0];
    expect(state?.periodEndMs).toBe(periodOf('day', now).endMs);
    // The next day: a day quota has started over.
    now = Date.UTC(2026, 11, 8, 10, 0, 0);
    const next = meter.admit(['A'], null);
    expect(next.kind).toBe('admitted');
  });

  it('day -> month: the month quota keeps its uses past midnight', () => {
    let now = Date.UTC(2026, 11, 7, 10, 0, 0);
    const meter = new UsageMeter([quota({ period: 'day' })], new Map(), () => {}, () => now);
    const a = meter.admit(['A'], null);
    if (a.kind !== 'admitted') throw new Error('not admitted');
    meter.configure([quota({ period: 'month' })]);
    a.reservation?.commit();
    const b = meter.admit(['A'], null);
    if (b.kind !== 'admitted') throw new Error('not admitted');
    b.reservation?.commit();
    now = Date.UTC(2026, 11, 8, 10, 0, 0);
    // Two uses this month against a limit of 2: exhausted until January.
    expect(meter.states()[0]).toMatchObject({ used: 2, state: 'exhausted' });
    expect(meter.admit(['A'], null).kind).toBe('exhausted');
  });
});
