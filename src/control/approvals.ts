import type { HeldRequest, HoldAnswer } from '../proxy/index.js';

/** A held request as the operator's views list it: what it is, and until when it waits. */
export interface PendingApproval {
  readonly id: string;
  readonly request_id: string;
  readonly client: string | null;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly secret_names: readonly string[];
  readonly requested_at: string;
  readonly expires_at: string;
  readonly remember_s: number;
}

interface Held { readonly request: HeldRequest; readonly atMs: number; readonly settle: (a: HoldAnswer) => void }

/**
 * The waiting room is bounded: a request past these is refused at once (429 approval_queue_full), so one agent
 * cannot bury the requests an operator must answer, or hold keyswap's memory with thousands of open requests.
 */
export const MAX_HELD_PER_ACCOUNT = 16;
export const MAX_HELD = 256;

/**
 * Requests a binding's `approve:` holds, until an operator answers (`answer`), their time runs out, or the agent
 * leaves; and the approvals an operator asked to remember, per client, binding and method, until they lapse.
 */
export class Approvals {
  readonly #held = new Map<string, Held>();
  readonly #remembered = new Map<string, number>();
  readonly #now: () => number;
  /** Told of every change to the pending list (the console's live view). */
  onChange: () => void = () => {};

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  remembered(key: string): boolean {
    const until = this.#remembered.get(key);
    if (until === undefined) return false;
    if (this.#now() < until) return true;
    this.#remembered.delete(key);
    return false;
  }

  hasRoom(account: string | null): boolean {
    if (this.#held.size >= MAX_HELD) return false;
    let mine = 0;
    for (const h of this.#held.values()) if (h.request.account === account) mine++;
    return mine < MAX_HELD_PER_ACCOUNT;
  }

  hold(request: HeldRequest, gone: AbortSignal): Promise<HoldAnswer> {
    // Checked again here: requests admitted together (hasRoom, then an fsync each) may arrive past the bound.
    if (!this.hasRoom(request.account)) return Promise.resolve({ kind: 'full' });
    return new Promise((resolve) => {
      // Two requests could share the first 8 hex digits of their ids: the later one gets a longer id.
      const id = this.#held.has(request.id) ? request.requestId : request.id;
      const held = { ...request, id };
      const settle = (a: HoldAnswer): void => {
        if (this.#held.get(id)?.settle !== settle) return;
        clearTimeout(timer);
        gone.removeEventListener('abort', onGone);
        this.#held.delete(id);
        this.onChange();
        resolve(a);
      };
      const timer = setTimeout(() => settle({ kind: 'expired', by: null }), request.timeoutMs);
      const onGone = (): void => settle({ kind: 'expired', by: 'agent_left' });
      this.#held.set(id, { request: held, atMs: this.#now(), settle });
      if (gone.aborted) return onGone();
      gone.addEventListener('abort', onGone, { once: true });
      this.onChange();
    });
  }

  /** An operator's answer; false when no request waits under this id (answered, expired, or never held). */
  answer(id: string, answer: { readonly kind: 'granted'; readonly by: 'cli' | 'ui'; readonly rememberMs: number | null } | { readonly kind: 'denied'; readonly by: 'cli' | 'ui' }): HeldRequest | null {
    const held = this.#held.get(id);
    if (held === undefined) return null;
    if (answer.kind === 'granted') {
      // The binding's remember_seconds unless the operator said otherwise (--remember, the console's choice).
      const rememberMs = answer.rememberMs ?? held.request.rememberMs;
      if (rememberMs > 0) this.#remembered.set(held.request.rememberKey, this.#now() + rememberMs);
      held.settle({ kind: 'granted', by: answer.by, rememberMs });
    } else held.settle(answer);
    return held.request;
  }

  list(): PendingApproval[] {
    return [...this.#held.values()].map(({ request: r, atMs }) => ({
      id: r.id, request_id: r.requestId, client: r.client, method: r.method, host: r.host, port: r.port, path: r.path, secret_names: r.secretNames,
      requested_at: new Date(atMs).toISOString(), expires_at: new Date(atMs + r.timeoutMs).toISOString(), remember_s: Math.round(r.rememberMs / 1000),
    }));
  }

  /** Drops every remembered approval (lockdown). */
  forget(): void {
    this.#remembered.clear();
  }

  /** keyswap is stopping: whatever waits is answered as expired (the agent gets 403 approval_timeout). */
  stop(): void {
    for (const held of [...this.#held.values()]) held.settle({ kind: 'expired', by: null });
  }
}
