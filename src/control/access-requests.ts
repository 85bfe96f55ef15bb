import { randomBytes } from 'node:crypto';
import type { AccessProposal } from '../proxy/index.js';

/** An agent's request for a binding, as operators' views list it. `reason` is the agent's text, made printable. */
export interface PendingAccess {
  readonly id: string;
  readonly client: string | null;
  readonly secret: string;
  readonly host: string;
  readonly port: number | null;
  readonly methods: readonly string[] | null;
  readonly paths: readonly string[] | null;
  readonly reason: string;
  readonly requested_at: string;
  readonly expires_at: string;
}

interface Held { readonly proposal: AccessProposal; readonly view: PendingAccess; readonly expiresAtMs: number }

/** Agents' requests are bounded like held approvals: one agent cannot bury the rest, nor grow keyswap's memory. */
export const MAX_ACCESS_PER_ACCOUNT = 8;
export const MAX_ACCESS = 128;
/** Unanswered for this long, a request lapses (an agent asks again if it still needs it). */
export const ACCESS_TTL_MS = 24 * 3_600_000;

/**
 * The bindings agents asked for, until an operator accepts (the CLI writes the binding and reloads) or declines
 * one, or it lapses. In memory: a restart forgets them (each is in the audit log, with its step).
 */
export class AccessRequests {
  readonly #pending = new Map<string, Held>();
  readonly #now: () => number;
  /** Told of every change to the list (the console's live view). */
  onChange: () => void = () => {};

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The pending request this one repeats (same account, secret and binding), if any. */
  same(p: AccessProposal): string | null {
    this.#lapse();
    const key = keyOf(p);
    for (const [id, h] of this.#pending) if (keyOf(h.proposal) === key) return id;
    return null;
  }

  hasRoom(account: string | null): boolean {
    this.#lapse();
    if (this.#pending.size >= MAX_ACCESS) return false;
    let mine = 0;
    for (const h of this.#pending.values()) if (h.proposal.account === account) mine++;
    return mine < MAX_ACCESS_PER_ACCOUNT;
  }

  add(p: AccessProposal): string {
    let id: string;
    do id = `ar-${randomBytes(4).toString('hex')}`; while (this.#pending.has(id));
    const at = this.#now();
    this.#pending.set(id, {
      proposal: p,
      expiresAtMs: at + ACCESS_TTL_MS,
      view: {
        id, client: p.client, secret: p.secretName, host: p.host, port: p.port, methods: p.methods, paths: p.paths, reason: printable(p.reason),
        requested_at: new Date(at).toISOString(), expires_at: new Date(at + ACCESS_TTL_MS).toISOString(),
      },
    });
    this.onChange();
    return id;
  }

  get(id: string): PendingAccess | null {
    this.#lapse();
    return this.#pending.get(id)?.view ?? null;
  }

  /** Takes a request off the list (accepted or declined); null when none is pending under this id. */
  take(id: string): { readonly proposal: AccessProposal; readonly view: PendingAccess } | null {
    this.#lapse();
    const held = this.#pending.get(id);
    if (held === undefined) return null;
    this.#pending.delete(id);
    this.onChange();
    return held;
  }

  /** Takes every request of this client off the list (it was revoked): none of them may be accepted later. */
  takeClient(client: string): { readonly id: string; readonly proposal: AccessProposal }[] {
    const out = [...this.#pending].filter(([, h]) => h.proposal.client === client || h.proposal.account === client).map(([id, h]) => ({ id, proposal: h.proposal }));
    for (const { id } of out) this.#pending.delete(id);
    if (out.length > 0) this.onChange();
    return out;
  }

  list(): PendingAccess[] {
    this.#lapse();
    return [...this.#pending.values()].map((h) => h.view);
  }

  /** Lapsed requests, taken off the list (the caller records them). */
  lapsed: (id: string, p: AccessProposal) => void = () => {};

  #lapse(): void {
    const now = this.#now();
    for (const [id, h] of this.#pending) {
      if (h.expiresAtMs > now) continue;
      this.#pending.delete(id);
      this.lapsed(id, h.proposal);
    }
  }
}

function keyOf(p: AccessProposal): string {
  return JSON.stringify([p.account, p.secretName, p.host, p.port, p.methods, p.paths]);
}

/** An agent's text for an operator's terminal and browser: no control characters (an escape sequence, a fake line). */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, ' ').slice(0, 500);
}
