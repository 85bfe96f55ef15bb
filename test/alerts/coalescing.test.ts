import { afterEach, describe, expect, it, vi } from 'vitest';
import { Alerter, AlertQueue } from '../../src/alerts/index.js';
import type { AuditEvent } from '../../src/audit/index.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #27: "a storm of violations is coalesced (first at once, then at most one summary per minute per kind,
 * with the count)"; "a threshold alert fires once when crossed". The alerter with a receiver that answers 204,
 * on Vitest's clock.
 */

afterEach(() => vi.useRealTimers());

const violation = (i: number): AuditEvent => ({ type: 'inject_decision', request_id: `r${i}`, method: 'GET', destination: { host: 'evil.example', port: 443, path_prefix: '/x' }, client: null, decision: 'denied', reason: 'destination_not_in_binding', secret_name: 'K' });

describe('the alerter', () => {
  it('1,000 violations in a minute: the first at once, one summary with the count at the minute\'s end', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 7, 12, 0, 0) });
    const w = tempWorld('alerts');
    const posted: { type: string; data: { count?: number } }[] = [];
    const audited: AuditEvent[] = [];
    const alerter = new Alerter({
      queue: await AlertQueue.open(w.dir),
      webhooks: [{ url: 'https://hooks.example.test/k', signingSecret: 'HOOK', events: new Set(['violation', 'honeytoken']) }],
      secret: async () => new Secret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
      post: async (_url, _headers, body) => { posted.push(JSON.parse(body) as { type: string; data: { count?: number } }); return 204; },
      audit: (e) => audited.push(e),
      log: createLogger('silent'),
    });
    alerter.start();
    for (let i = 0; i < 1000; i++) alerter.onAudit(violation(i));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(posted.map((p) => [p.type, p.data.count])).toEqual([['violation', undefined]]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(posted.map((p) => [p.type, p.data.count])).toEqual([['violation', undefined], ['violation', 999]]);
    // Another kind is not held back by the first one's window; an event no webhook asked for is not sent.
    alerter.onAudit({ type: 'honeytoken_triggered', request_id: 'h', method: 'GET', destination: { host: 'a', port: 443, path_prefix: '/' }, client: null, secret_name: 'H', decision: 'denied' });
    alerter.raise('backend_failed', { reason: 'x' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(posted.map((p) => p.type)).toEqual(['violation', 'violation', 'honeytoken']);
    expect(audited.filter((e) => e.type === 'alert_delivery' && e.outcome === 'delivered')).toHaveLength(3);
    await alerter.stop();
  });

  it('an undelivered alert survives a restart: a new alerter on the same queue delivers it, with the same id', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 7, 12, 0, 0) });
    const w = tempWorld('alerts-restart');
    const webhooks = [{ url: 'https://hooks.example.test/k', signingSecret: 'HOOK', events: new Set(['honeytoken']) }];
    const common = { webhooks, secret: async () => new Secret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), audit: () => {}, log: createLogger('silent') };
    const first = new Alerter({ ...common, queue: await AlertQueue.open(w.dir), post: async () => 503 });
    first.start();
    first.raise('honeytoken', { secret_name: 'H' });
    await vi.advanceTimersByTimeAsync(500);
    await first.stop();
    const ids: string[] = [];
    const second = new Alerter({ ...common, queue: await AlertQueue.open(w.dir), post: async (_u, headers) => { ids.push(headers['webhook-id'] as string); return 204; } });
    second.start();
    await vi.advanceTimersByTimeAsync(5_000);
    await second.stop();
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^msg_/);
    expect((await AlertQueue.open(w.dir)).items).toEqual([]);
  });
});
