import { describe, expect, it } from 'vitest';
import { UsageMeter } from '../../../src/usage/index.js';
import type { QuotaSpec } from '../../../src/config/index.js';

/*
 * usage_exhausted fires only when a commit makes the count exactly equal to the limit (meter.ts:99). A reload that
 * lowers a quota's limit to or below this period's count (kept by name: meter.ts:57-66) exhausts the quota at once:
 * every request gets 429 from then on, so the count never moves again and never "reaches" the limit: no
 * usage_exhausted alert for the period, though the quota is exhausted (docs/alerts.md: "a quota's count reaches its
 * limit, once per period"). Likewise a warn_at lowered below the count never raises usage_warning.
 */

const quota = (over: Partial<QuotaSpec> = {}): QuotaSpec => ({ name: 'q', secrets: null, clients: null, limit: 10, period: 'day', warnAt: 0.9, ...over });

describe('attack27: a reload that lowers a limit below the count', () => {
  it('still raises usage_exhausted for the period', () => {
    const now = Date.UTC(2026, 11, 7, 10, 0, 0);
    const meter = new UsageMeter([quota()], new Map(), () => {}, () => now);
    const crossings: string[] = [];
    meter.onCrossing = (c) => crossings.push(c.kind);
    for (let i = 0; i < 5; i++) {
      const a = meter.admit(['A'], null);
      if (a.kind === 'admitted') a.reservation?.commit();
    }
    meter.configure([quota({ limit: 4 })]);
    expect(meter.admit(['A'], null).kind).toBe('exhausted');
    expect(meter.states()[0]?.state).toBe('exhausted');
    expect(crossings).toContain('exhausted');
  });
});
