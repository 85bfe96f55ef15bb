import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../audit/index.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import { alertOf, type AlertData, type AlertEvent } from './events.js';
import type { AlertQueue, QueuedAlert } from './queue.js';
import { mailOf, type EmailSink, type SendMail } from './email.js';
import { signedHeaders, type Post, type WebhookSink } from './webhook.js';

export interface AlerterDeps {
  readonly queue: AlertQueue;
  readonly webhooks: readonly WebhookSink[];
  /** `alerts.email`, and how to send through it (nodemailer, in cli/). */
  readonly email?: { readonly sink: EmailSink; readonly send: SendMail };
  /** The signing secret, from the backend (through the cache). */
  readonly secret: (name: string) => Promise<Secret>;
  readonly post: Post;
  /** Each attempt's record (lazy: an alert never waits on, or delays, a request's fsync). */
  readonly audit: (e: AuditEvent) => void;
  readonly log: Logger;
  readonly now?: () => number;
}

/** First delivery retry, its cap, and how long an alert is tried at all. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;
const GIVE_UP_MS = 60 * 60_000;
/** A storm is coalesced: the first of a kind goes at once, then at most one summary per window, with the count. */
const COALESCE_MS = 60_000;
/** How long a stop waits for deliveries under way. */
const STOP_WAIT_MS = 5_000;
/** Kinds that fire once per crossing by nature, or that someone must answer one by one (an approval), never coalesced. */
const UNCOALESCED: ReadonlySet<AlertEvent> = new Set(['usage_warning', 'usage_exhausted', 'credential_expiring', 'approval_requested', 'lockdown']);

interface Window { endsAt: number; suppressed: number; last: AlertData; timer: NodeJS.Timeout | null }

/**
 * Turns what keyswap already records into alerts and delivers them: audit events (alertOf), quota crossings and
 * expiring credentials are raised here, coalesced per kind, queued durably per webhook, signed per Standard Webhooks
 * at each attempt, posted through keyswap's own upstream client, retried with backoff for up to an hour, and each
 * attempt audited. Nothing here is on a request's path: raising an alert only queues it.
 */
export class Alerter {
  readonly #d: AlerterDeps;
  readonly #now: () => number;
  readonly #windows = new Map<AlertEvent, Window>();
  readonly #sending = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(deps: AlerterDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => this.#deliverDue(), 250);
    this.#timer.unref();
    this.#deliverDue();
  }

  /** An audit event as it is written: the alert it is, if any. */
  onAudit(e: AuditEvent): void {
    const alert = alertOf(e);
    if (alert !== null) this.raise(alert.type, alert.data);
  }

  raise(type: AlertEvent, data: AlertData): void {
    if (this.#stopped || !(this.#d.webhooks.some((w) => w.events.has(type)) || this.#d.email?.sink.events.has(type))) return;
    if (UNCOALESCED.has(type)) {
      this.#enqueue(type, data);
      return;
    }
    const now = this.#now();
    const w = this.#windows.get(type);
    if (w === undefined || now >= w.endsAt) {
      this.#enqueue(type, data);
      this.#windows.set(type, { endsAt: now + COALESCE_MS, suppressed: 0, last: data, timer: null });
      return;
    }
    w.suppressed++;
    w.last = data;
    w.timer ??= setTimeout(() => {
      w.timer = null;
      if (w.suppressed > 0) this.#enqueue(type, { ...w.last, count: w.suppressed });
      this.#windows.set(type, { endsAt: this.#now() + COALESCE_MS, suppressed: 0, last: w.last, timer: null });
    }, Math.max(0, w.endsAt - now));
    w.timer.unref();
  }

  async stop(): Promise<void> {
    // What a window held back is queued now (as its summary), so a restart delivers it rather than losing it.
    for (const [type, w] of this.#windows) {
      if (w.timer !== null) clearTimeout(w.timer);
      if (w.suppressed > 0) this.#enqueue(type, { ...w.last, count: w.suppressed });
    }
    this.#windows.clear();
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    // Attempts under way finish (or are abandoned after a few seconds, still queued): an alert delivered just before
    // a stop must leave the queue, or the next start sends it twice (a second mail has no id to drop it by).
    await Promise.race([Promise.allSettled(this.#sending.values()), new Promise((r) => setTimeout(r, STOP_WAIT_MS).unref())]);
    await this.#d.queue.flush();
  }

  #enqueue(type: AlertEvent, data: AlertData): void {
    const now = this.#now();
    const id = `msg_${randomUUID()}`;
    const body = JSON.stringify({ type, timestamp: new Date(now).toISOString(), data });
    const sinks = [...this.#d.webhooks.filter((w) => w.events.has(type)).map((w) => w.url), ...(this.#d.email?.sink.events.has(type) ? [this.#d.email.sink.id] : [])];
    for (const url of sinks) this.#d.queue.add({ id, event: type, url, body, attempts: 0, first_at: now, next_at: now });
    this.#deliverDue();
  }

  #deliverDue(): void {
    if (this.#stopped) return;
    const now = this.#now();
    for (const item of this.#d.queue.items) {
      const key = `${item.id} ${item.url}`;
      if (item.next_at > now || this.#sending.has(key)) continue;
      this.#sending.set(key, this.#attempt(item)
        .catch((err: unknown) => this.#d.log.error({ sink: sinkLabel(item.url), err: (err as Error).message }, 'alert delivery failed unexpectedly; it stays queued'))
        .finally(() => this.#sending.delete(key)));
    }
  }

  async #attempt(item: QueuedAlert): Promise<void> {
    const hook = this.#d.webhooks.find((w) => w.url === item.url);
    const mail = this.#d.email?.sink.id === item.url ? this.#d.email : undefined;
    const sink = hook ?? mail;
    const label = sinkLabel(item.url);
    const attempt = item.attempts + 1;
    let status: number | null = null;
    try {
      if (hook !== undefined) {
        const key = (await this.#d.secret(hook.signingSecret)).reveal();
        status = await this.#d.post(new URL(item.url), signedHeaders(key, item.id, item.body, new Date(this.#now())), item.body);
      } else if (mail !== undefined) {
        const { subject, text } = mailOf(item.body);
        await mail.send(subject, text);
        status = 250;
      }
    } catch (err) {
      this.#d.log.warn({ sink: label, event: item.event, err: (err as Error).message }, 'alert not delivered; will retry');
    }
    const now = this.#now();
    const record = (outcome: 'delivered' | 'retrying' | 'dropped'): void => this.#d.audit({ type: 'alert_delivery', alert_id: item.id, event: item.event, sink: label, outcome, attempt, status });
    if (status !== null && ((status >= 200 && status < 300) || (mail !== undefined && status === 250))) {
      this.#d.queue.update(item.id, item.url, null);
      record('delivered');
      return;
    }
    // A webhook removed from the config by a reload, or an hour of failures: dropped, and said so.
    if (sink === undefined || now - item.first_at >= GIVE_UP_MS) {
      this.#d.queue.update(item.id, item.url, null);
      record('dropped');
      this.#d.log.error({ sink: label, event: item.event, attempts: attempt }, 'alert dropped after an hour of failed deliveries');
      return;
    }
    const delay = Math.min(RETRY_FIRST_MS * 2 ** item.attempts, RETRY_MAX_MS);
    this.#d.queue.update(item.id, item.url, { attempts: attempt, next_at: now + delay });
    record('retrying');
  }
}

/** A sink as logs and audit records name it: a webhook's or mail server's host and port, never its path. */
function sinkLabel(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url.replace(/^[a-z]+:\/\//, '').split('/')[0] ?? 'sink';
  }
}
