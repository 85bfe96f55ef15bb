import type { QuotaSpec } from '../config/index.js';

/** The calendar period (UTC) holding `ms`: its start and end. Weeks start on Monday (ISO 8601). */
export function periodOf(period: QuotaSpec['period'], ms: number): { readonly startMs: number; readonly endMs: number } {
  const d = new Date(ms);
  const [y, m, day, h] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()];
  switch (period) {
    case 'hour':
      return { startMs: Date.UTC(y, m, day, h), endMs: Date.UTC(y, m, day, h + 1) };
    case 'day':
      return { startMs: Date.UTC(y, m, day), endMs: Date.UTC(y, m, day + 1) };
    case 'week': {
      const back = (d.getUTCDay() + 6) % 7; // days since Monday
      return { startMs: Date.UTC(y, m, day - back), endMs: Date.UTC(y, m, day - back + 7) };
    }
    case 'month':
      return { startMs: Date.UTC(y, m, 1), endMs: Date.UTC(y, m + 1, 1) };
  }
}
