import { describe, expect, it } from 'vitest';
import { Alerter, AlertQueue } from '../../../src/alerts/index.js';
import type { AuditEvent } from '../../../src/audit/index.js';
import { createLogger } from '../../../src/log.js';
import { Secret } from '../../../src/secret.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Coalescing holds every alert of a kind after the first in memory (alerter.ts:79-86) until its window's timer
 * fires; stop() clears those timers (alerter.ts:92) without queueing the summary. Alerts are "at least once,
 * queued in alerts-queue.json; a restart delivers what was queued", but the held ones were never queued: a restart
 * (or crash) within the minute loses them for good. An agent raises one cheap violation, then within the minute
 * does what it wants to hide (other honeytokens, other violations), then gets keyswap restarted: only the decoy
 * is ever alerted.
 */

const honey = (i: number, name: string): AuditEvent => ({ type: 'honeytoken_triggered', request_id: `r${i}`, method: 'GET', destination: { host: 'api.example', port: 443, path_prefix: '/x' }, client: null, decision: 'allowed', secret_name: name });

describe('attack27: alerts held back by coalescing when keyswap stops', () => {
  it('are queued (as the summary) before stop returns, so the next start delivers them', async () => {
    const w = tempWorld('alerts-stop');
    const alerter = new Alerter({
      queue: await AlertQueue.open(w.dir),
      webhooks: [{ url: 'https://hooks.example.test/k', signingSecret: 'HOOK', events: new Set(['honeytoken']) }],
      secret: async () => new Secret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
      post: async () => 503, // the receiver is down: everything stays queued
      audit: () => {},
      log: createLogger('silent'),
    });
    alerter.start();
    alerter.onAudit(honey(1, 'DECOY'));
    alerter.onAudit(honey(2, 'REAL_HONEY_A'));
    alerter.onAudit(honey(3, 'REAL_HONEY_B'));
    await alerter.stop();
    const after = await AlertQueue.open(w.dir);
    const bodies = after.items.map((i) => JSON.parse(i.body) as { data: { secret_name: string; count?: number } });
    // The decoy, and a summary of the two that came after it.
    expect(bodies).toHaveLength(2);
    expect(bodies[1]?.data.count).toBe(2);
  });
});
