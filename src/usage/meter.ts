import { accountOf, type ClientSpec, type QuotaSpec } from '../config/index.js';
import { periodOf } from './periods.js';

/** Where a quota stands: uses that went out this period, the limit, and when the period ends. */
export interface QuotaState {
  readonly name: string;
  readonly used: number;
  readonly limit: number;
  readonly period: QuotaSpec['period'];
  readonly periodStartMs: number;
  readonly periodEndMs: number;
  readonly state: 'ok' | 'warning' | 'exhausted';
}

/** A use admitted and not yet gone out: commit it when the request leaves, release it when it does not. */
export interface Reservation {
  /** Counts the use; returns the `keyswap-usage-warning` value when a quota it counts under is at or past warn_at. */
  commit(): string | null;
  release(): void;
}

/** `usage:` quotas as the request path asks them: this process's meter, or (shared_state) the replicas' counts. */
export interface Quotas {
  admit(secrets: readonly string[], client: ClientSpec | null): Admission | Promise<Admission>;
  states(): QuotaState[];
}

/** `reservation` null: no quota counts this use, so there is nothing to commit or release. */
export type Admission = { readonly kind: 'admitted'; readonly reservation: Reservation | null } | { readonly kind: 'exhausted'; readonly quota: string; readonly retryAfterSeconds: number };

interface Count {
  used: number;
  readonly period: QuotaSpec['period'];
  readonly periodStartMs: number;
  readonly periodEndMs: number;
  /** The crossing alerts already raised this period. */
  readonly told: Set<'warning' | 'exhausted'>;
}

/**
 * The quotas of `usage:` and their counts. A use is admitted only while what went out plus what is on its way stays
 * under every matching quota's limit (concurrent requests cannot overshoot), counted when it goes out, and released
 * when it does not: a refused or abandoned request is never counted. Counts roll over at each calendar period (UTC).
 * `onChange` is told after every count, for the durable copy.
 */
export class UsageMeter implements Quotas {
  #quotas: readonly QuotaSpec[] = [];
  readonly #counts = new Map<string, Count>();
  /** Uses admitted and not yet gone out, by quota: they hold their place whatever the period. */
  readonly #pending = new Map<string, number>();
  readonly #onChange: () => void;
  readonly #now: () => number;

  /** Told once when a count reaches warn_at and once when it reaches the limit, each period (alerts). */
  onCrossing: (crossing: { readonly quota: QuotaSpec; readonly used: number; readonly kind: 'warning' | 'exhausted' }) => void = () => {};

  constructor(quotas: readonly QuotaSpec[], restored: ReadonlyMap<string, { readonly period: string; readonly periodStartMs: number; readonly used: number }>, onChange: () => void, now: () => number = Date.now) {
    this.#onChange = onChange;
    this.#now = now;
    this.configure(quotas);
    for (const q of quotas) {
      const saved = restored.get(q.name);
      const c = this.#count(q);
      if (saved !== undefined && saved.period === q.period && saved.periodStartMs === c.periodStartMs) {
        c.used = saved.used;
        // Crossings behind a restored count were told before the restart.
        if (c.used >= q.warnAt * q.limit) c.told.add('warning');
        if (c.used >= q.limit) c.told.add('exhausted');
      }
    }
  }

  /** A reload: quotas kept by name keep their counts (a changed period starts over); removed ones are forgotten. */
  configure(quotas: readonly QuotaSpec[]): void {
    const names = new Set(quotas.map((q) => q.name));
    for (const name of this.#counts.keys()) if (!names.has(name)) this.#counts.delete(name);
    for (const name of this.#pending.keys()) if (!names.has(name) && this.#pending.get(name) === 0) this.#pending.delete(name);
    this.#quotas = quotas;
    // A limit or warn_at lowered below the count crosses now (the count will not move while refused).
    for (const q of quotas) this.#tell(q, this.#count(q));
  }

  /** The quotas a use of these secrets by this client counts under. */
  matching(secrets: readonly string[], client: ClientSpec | null): QuotaSpec[] {
    return quotasMatching(this.#quotas, secrets, client);
  }

  admit(secrets: readonly string[], client: ClientSpec | null): Admission {
    const quotas = this.matching(secrets, client);
    if (quotas.length === 0) return { kind: 'admitted', reservation: null };
    const now = this.#now();
    for (const q of quotas) {
      const c = this.#count(q, now);
      this.#tell(q, c);
      if (c.used + (this.#pending.get(q.name) ?? 0) >= q.limit) return { kind: 'exhausted', quota: q.name, retryAfterSeconds: Math.max(1, Math.ceil((c.periodEndMs - now) / 1000)) };
    }
    const bump = (by: number): void => { for (const q of quotas) this.#pending.set(q.name, (this.#pending.get(q.name) ?? 0) + by); };
    bump(1);
    let settled = false;
    return {
      kind: 'admitted',
      reservation: {
        commit: () => {
          if (settled) return null;
          settled = true;
          bump(-1);
          const warnings: string[] = [];
          for (const admitted of quotas) {
            // The quota as configured now (a reload may have changed or removed it while the request waited), in
            // the period the use went out in.
            const q = this.#quotas.find((c) => c.name === admitted.name);
            if (q === undefined) continue;
            const current = this.#count(q);
            current.used++;
            if (current.used >= q.warnAt * q.limit) warnings.push(`${current.used}/${q.limit} per ${q.period} (${q.name})`);
            this.#tell(q, current);
          }
          this.#onChange();
          return warnings.length === 0 ? null : warnings.join(', ');
        },
        release: () => {
          if (settled) return;
          settled = true;
          bump(-1);
        },
      },
    };
  }

  states(): QuotaState[] {
    const now = this.#now();
    return this.#quotas.map((q) => {
      const c = this.#count(q, now);
      return { name: q.name, used: c.used, limit: q.limit, period: q.period, periodStartMs: c.periodStartMs, periodEndMs: c.periodEndMs, state: stateOf(q, c.used) };
    });
  }

  #count(q: QuotaSpec, now = this.#now()): Count {
    let c = this.#counts.get(q.name);
    if (c === undefined || c.period !== q.period || now >= c.periodEndMs) {
      const { startMs, endMs } = periodOf(q.period, now);
      c = { used: 0, period: q.period, periodStartMs: startMs, periodEndMs: endMs, told: new Set() };
      this.#counts.set(q.name, c);
    }
    return c;
  }

  /** Raises each crossing alert once per period, when the count is at or past its threshold. */
  #tell(q: QuotaSpec, c: Count): void {
    if (c.used >= q.limit) {
      if (!c.told.has('exhausted')) {
        c.told.add('exhausted');
        c.told.add('warning');
        this.onCrossing({ quota: q, used: c.used, kind: 'exhausted' });
      }
    } else if (c.used >= q.warnAt * q.limit && !c.told.has('warning')) {
      c.told.add('warning');
      this.onCrossing({ quota: q, used: c.used, kind: 'warning' });
    }
  }
}

/** Of these quotas, those a use of these secrets by this client counts under (a session counts as its client). */
export function quotasMatching(quotas: readonly QuotaSpec[], secrets: readonly string[], client: ClientSpec | null): QuotaSpec[] {
  return quotas.filter((q) => (q.secrets === null || secrets.some((s) => q.secrets?.has(s))) && (q.clients === null || (client !== null && q.clients.has(accountOf(client) ?? ''))));
}

export function stateOf(q: Pick<QuotaSpec, 'limit' | 'warnAt'>, used: number): QuotaState['state'] {
  return used >= q.limit ? 'exhausted' : used >= q.warnAt * q.limit ? 'warning' : 'ok';
}
