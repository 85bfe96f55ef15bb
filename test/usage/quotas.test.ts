import { describe, expect, it } from 'vitest';
import { UsageMeter, periodOf } from '../../src/usage/index.js';
import type { QuotaSpec } from '../../src/config/index.js';
import { cliCollect, startCli } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

/*
 * Issue #27, item 1: usage quotas. A real keyswap with `usage: { daily: { limit: 5, period: day, warn_at: 60% } }`:
 * requests 1-2 plain, 3-5 carry keyswap-usage-warning, 6 gets 429 with Retry-After and reaches no upstream; a
 * restart keeps the count; a request that did not go out is never counted; `keyswap usage` and the metrics say the
 * same numbers.
 */

const PH_B = 'gh-PLACEHOLDER-QUOTAQUOTAQUOTAQUOTA01';
const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  MISSING_KEY:
    placeholder: "${PH_B}"
    inject: { header: X-Missing, format: "{MISSING_KEY}" }
    bindings: [ { host: other.example.test } ]
`;
const USAGE = 'usage:\n  daily: { secrets: [TEST_API_KEY, MISSING_KEY], limit: 5, period: day, warn_at: 60% }\n  other-only: { secrets: [MISSING_KEY], limit: 1, period: hour }';

const get = (h: Harness): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });

describe('usage quotas through a real keyswap', () => {
  it('warns from warn_at, refuses at the limit with Retry-After and nothing upstream, keeps the count across a restart', async () => {
    let h = await startHarness({ secrets: SECRETS, top: USAGE, args: ['--metrics', '127.0.0.1:0'] });
    const dir = h.dir;
    try {
      // Not counted: refused before it went out (no value for MISSING_KEY).
      expect((await curlVia(h, 'https://other.example.test/v1/echo', { headers: [`X-Missing: ${PH_B}`] })).status).toBe(503);
      const seen: (string | undefined)[] = [];
      for (let i = 1; i <= 5; i++) {
        const r = await get(h);
        expect(r.status).toBe(200);
        seen.push(r.headers['keyswap-usage-warning']);
      }
      expect(seen).toEqual([undefined, undefined, '3/5 per day (daily)', '4/5 per day (daily)', '5/5 per day (daily)']);
      const before = h.upstream.requests.length;
      const sixth = await get(h);
      expect(sixth.status).toBe(429);
      expect(sixth.body).toBe('keyswap: usage quota for this credential reached; retry after the period ends\n');
      const retryAfter = Number(sixth.headers['retry-after']);
      const toMidnight = Math.ceil((periodOf('day', Date.now()).endMs - Date.now()) / 1000);
      expect(Math.abs(retryAfter - toMidnight)).toBeLessThanOrEqual(5);
      expect(h.upstream.requests.length).toBe(before);
      // The refusal's record is written as the answer goes (nothing waits on it): looked for until it lands.
      expect(await waitFor(() => h.auditRecords().filter((r) => r.type === 'deny' && r.reason === 'usage_limit_reached').length === 1, 3000)).toBe(true);

      const metricsUrl = /metrics: (http:\/\/\S+)/.exec(h.stdout())?.[1] as string;
      const metrics = await (await fetch(metricsUrl)).text();
      expect(metrics).toContain('keyswap_usage_used{quota="daily"} 5');
      expect(metrics).toContain('keyswap_usage_limit{quota="daily"} 5');
    } finally {
      await h.stop();
    }
    const usage = await cliCollect(['usage', '--config', `${dir}/keyswap.yaml`]);
    expect(usage.stdout).toMatch(/^QUOTA\s+USED\s+LIMIT\s+PERIOD\s+ENDS\s+STATE\ndaily\s+5\s+5\s+day\s+\S+Z\s+exhausted\nother-only\s+0\s+1\s+hour\s+\S+Z\s+ok\n$/);

    // A restart on the same state directory (and upstreams): the count goes on, the sixth is still refused.
    const again = startCli(['serve', '--config', `${dir}/keyswap.yaml`], { cwd: dir, env: { HOME: dir, KEYSWAP_SECRET_TEST_API_KEY: h.canary } });
    try {
      const port = await again.listeningPort();
      const before = h.upstream.requests.length;
      const r = await curlVia({ ...h, proxyUrl: `http://127.0.0.1:${port}` }, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(r.status).toBe(429);
      expect(h.upstream.requests.length).toBe(before);
    } finally {
      await again.stop();
      await h.close();
    }
  });
});

describe('the meter', () => {
  const quota = (over: Partial<QuotaSpec> = {}): QuotaSpec => ({ name: 'q', secrets: null, clients: null, limit: 3, period: 'hour', warnAt: 0.9, ...over });

  it('concurrent admissions never overshoot the limit; a released one frees its place; the period rolls over', () => {
    let now = Date.UTC(2026, 11, 7, 10, 59, 0);
    const meter = new UsageMeter([quota()], new Map(), () => {}, () => now);
    const held = [meter.admit(['A'], null), meter.admit(['A'], null), meter.admit(['A'], null)];
    expect(held.map((a) => a.kind)).toEqual(['admitted', 'admitted', 'admitted']);
    expect(meter.admit(['A'], null)).toEqual({ kind: 'exhausted', quota: 'q', retryAfterSeconds: 60 });
    if (held[0]?.kind === 'admitted') held[0].reservation?.release();
    expect(meter.admit(['A'], null).kind).toBe('admitted');
    now = Date.UTC(2026, 11, 7, 11, 0, 1);
    expect(meter.states()[0]).toMatchObject({ used: 0, state: 'ok' });
  });

  it('secrets and clients narrow what counts', () => {
    const meter = new UsageMeter([quota({ secrets: new Set(['A']), clients: new Set(['ci']), limit: 1 })], new Map(), () => {});
    const ci = { name: 'ci', tokenSha256: 'x', spiffeId: null, secrets: new Set(['A']), expiresAtMs: null };
    expect(meter.matching(['B'], ci)).toEqual([]);
    expect(meter.matching(['A'], null)).toEqual([]);
    expect(meter.matching(['A', 'B'], ci)).toHaveLength(1);
  });

  it('calendar periods in UTC: ISO weeks start on Monday, months end where they end', () => {
    const sunday = Date.UTC(2026, 11, 6, 23, 30);
    expect(new Date(periodOf('week', sunday).startMs).toISOString()).toBe('2026-11-30T00:00:00.000Z');
    expect(new Date(periodOf('week', sunday).endMs).toISOString()).toBe('2026-12-07T00:00:00.000Z');
    expect(new Date(periodOf('month', Date.UTC(2027, 1, 28, 12)).endMs).toISOString()).toBe('2027-03-01T00:00:00.000Z');
    expect(new Date(periodOf('day', Date.UTC(2026, 11, 31, 23, 59)).endMs).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });
});
