import type { ClientSpec, QuotaSpec } from '../config/index.js';
import type { Logger } from '../log.js';
import { periodOf, quotasMatching, SharedStateUnavailable, stateOf, UsageMeter, type Admission, type Quotas, type QuotaState } from '../usage/index.js';
import { script, type SharedStore } from './store.js';

/**
 * Reserves one use under each quota, all or none: refused (the index of the first exhausted quota, negated) when
 * any count has reached its limit, else every count goes up by one and the new counts come back. A count lives
 * until its period ends (PEXPIREAT), so a new period starts from nothing on its own.
 */
const RESERVE = script(`
for i, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') >= tonumber(ARGV[i]) then return {-i} end
end
local out = {}
for i, k in ipairs(KEYS) do
  out[i] = redis.call('INCR', k)
  redis.call('PEXPIREAT', k, ARGV[#KEYS + i])
end
return out
`);

/** Gives back a use that did not go out (never below zero), or adds the uses a replica counted alone (local). */
const ADD = script(`
for i, k in ipairs(KEYS) do
  local by = tonumber(ARGV[i])
  local v = tonumber(redis.call('GET', k) or '0') + by
  if v < 0 then v = 0 end
  redis.call('SET', k, v, 'PXAT', ARGV[#KEYS + i])
end
return 0
`);

interface Known { readonly used: number; readonly periodStartMs: number }

/**
 * `usage:` quotas counted in Redis for every replica: a use is reserved atomically before the request goes out
 * (with 3 replicas and a limit of 100, exactly 100 go out), given back when it does not, and each crossing alert
 * is raised by one replica only (SET NX per quota, period and kind).
 *
 * Redis unreachable: `refuse` answers 503; `local` counts here, each quota's limit ÷ replicas, from this replica's
 * share of the last count it saw, and adds what it counted to Redis's count when Redis is back.
 */
export class SharedQuotas implements Quotas {
  readonly #store: SharedStore;
  readonly #fallback: 'refuse' | 'local';
  readonly #replicas: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #onChange: () => void;
  #quotas: readonly QuotaSpec[];
  /** The last count Redis gave, by quota: what status, metrics and usage.json show. */
  readonly #known = new Map<string, Known>();
  /** While Redis is unreachable under `local`: this replica's own meter, and the counts it started from. */
  #alone: { readonly meter: UsageMeter; readonly from: ReadonlyMap<string, Known> } | null = null;
  readonly #refresh: NodeJS.Timeout;

  onCrossing: (crossing: { readonly quota: QuotaSpec; readonly used: number; readonly kind: 'warning' | 'exhausted' }) => void = () => {};

  constructor(store: SharedStore, quotas: readonly QuotaSpec[], o: { readonly fallback: 'refuse' | 'local'; readonly replicas: number; readonly log: Logger; readonly onChange: () => void; readonly now?: () => number }) {
    this.#store = store;
    this.#quotas = quotas;
    this.#fallback = o.fallback;
    this.#replicas = o.replicas;
    this.#log = o.log;
    this.#onChange = o.onChange;
    this.#now = o.now ?? Date.now;
    // Other replicas count too: what this one shows is refreshed from Redis every 2 s.
    this.#refresh = setInterval(() => { void this.#reread(); }, 2_000);
    this.#refresh.unref();
    void this.#reread();
  }

  configure(quotas: readonly QuotaSpec[]): void {
    this.#quotas = quotas;
    this.#alone?.meter.configure(this.#shares(quotas));
  }

  /** Redis answers again: what this replica counted alone goes into the shared counts, once. */
  async rejoin(): Promise<void> {
    const alone = this.#alone;
    if (alone === null) return;
    this.#alone = null;
    const now = this.#now();
    const adds = alone.meter.states().flatMap((s) => {
      const from = alone.from.get(s.name);
      const by = s.used - (from !== undefined && from.periodStartMs === s.periodStartMs ? from.used : 0);
      return by > 0 && now < s.periodEndMs ? [{ key: this.#key(s.name, s.periodStartMs), by, endMs: s.periodEndMs }] : [];
    });
    if (adds.length === 0) return;
    await this.#store.eval(ADD, adds.map((a) => a.key), [...adds.map((a) => a.by), ...adds.map((a) => a.endMs)]).then(
      () => this.#log.info({ quotas: adds.length }, 'shared state: uses counted while Redis was unreachable added to the shared counts'),
      (err: Error) => this.#log.error({ why: err.message }, 'shared state: uses counted while Redis was unreachable could not be added to the shared counts'),
    );
    await this.#reread();
  }

  close(): void {
    clearInterval(this.#refresh);
  }

  async admit(secrets: readonly string[], client: ClientSpec | null): Promise<Admission> {
    const quotas = quotasMatching(this.#quotas, secrets, client);
    if (quotas.length === 0) return { kind: 'admitted', reservation: null };
    if (this.#store.available) {
      try {
        const admitted = await this.#reserve(quotas);
        // Redis answers again after counting alone (a command that timed out on a live connection is no outage
        // the connection reports): what was counted alone joins the shared counts now, and the local meter goes, so
        // a later outage starts from the count as it is then, not from this stale one.
        if (this.#alone !== null) void this.rejoin();
        return admitted;
      } catch (err) {
        if (!(err instanceof SharedStateUnavailable) || this.#fallback === 'refuse') throw err;
      }
    } else if (this.#fallback === 'refuse') {
      throw new SharedStateUnavailable('Redis is not connected');
    }
    return this.#local().admit(secrets, client);
  }

  states(): QuotaState[] {
    // Alone, this replica's share is what it enforces, and what it shows.
    if (this.#alone !== null) return this.#alone.meter.states();
    const now = this.#now();
    return this.#quotas.map((q) => {
      const { startMs, endMs } = periodOf(q.period, now);
      const k = this.#known.get(q.name);
      const used = k !== undefined && k.periodStartMs === startMs ? k.used : 0;
      return { name: q.name, used, limit: q.limit, period: q.period, periodStartMs: startMs, periodEndMs: endMs, state: stateOf(q, used) };
    });
  }

  async #reserve(quotas: readonly QuotaSpec[]): Promise<Admission> {
    const now = this.#now();
    const periods = quotas.map((q) => periodOf(q.period, now));
    const keys = quotas.map((q, i) => this.#key(q.name, (periods[i] as { startMs: number }).startMs));
    const out = await this.#store.eval<number[]>(RESERVE, keys, [...quotas.map((q) => q.limit), ...periods.map((p) => p.endMs)]);
    const first = out[0] ?? 0;
    if (first < 0) {
      const q = quotas[-first - 1] as QuotaSpec;
      const p = periods[-first - 1] as { endMs: number; startMs: number };
      this.#known.set(q.name, { used: q.limit, periodStartMs: p.startMs });
      return { kind: 'exhausted', quota: q.name, retryAfterSeconds: Math.max(1, Math.ceil((p.endMs - now) / 1000)) };
    }
    quotas.forEach((q, i) => this.#known.set(q.name, { used: out[i] ?? 0, periodStartMs: (periods[i] as { startMs: number }).startMs }));
    let settled = false;
    return {
      kind: 'admitted',
      reservation: {
        commit: () => {
          if (settled) return null;
          settled = true;
          const warnings: string[] = [];
          quotas.forEach((q, i) => {
            const used = out[i] ?? 0;
            if (used >= q.warnAt * q.limit) warnings.push(`${used}/${q.limit} per ${q.period} (${q.name})`);
            const kind = used >= q.limit ? 'exhausted' : used >= q.warnAt * q.limit ? 'warning' : null;
            if (kind !== null) this.#tellOnce(q, used, kind, periods[i] as { startMs: number; endMs: number });
          });
          this.#onChange();
          return warnings.length === 0 ? null : warnings.join(', ');
        },
        release: () => {
          if (settled) return;
          settled = true;
          // A use that did not go out is given back; with Redis gone it stays counted (the safe side).
          this.#store.eval(ADD, keys, [...keys.map(() => -1), ...periods.map((p) => p.endMs)]).catch((err: Error) => {
            this.#log.warn({ why: err.message }, 'shared state: a use that did not go out could not be given back; it stays counted');
          });
        },
      },
    };
  }

  /** One replica raises each crossing: the one whose SET NX lands. */
  #tellOnce(q: QuotaSpec, used: number, kind: 'warning' | 'exhausted', p: { readonly startMs: number; readonly endMs: number }): void {
    const told = (k: string): Promise<boolean> => this.#store.setIfAbsent(`${this.#key(q.name, p.startMs)}:told:${k}`, '1', p.endMs - this.#now() + 60_000);
    void (async () => {
      // Reaching the limit also passes warn_at: the warning is taken too, so it never comes after the exhaustion.
      const first = await told(kind);
      if (kind === 'exhausted') await told('warning');
      if (first) this.onCrossing({ quota: q, used, kind });
    })().catch(() => {});
  }

  #local(): UsageMeter {
    if (this.#alone === null) {
      // This replica's share of what was used, as last seen: its own count starts there.
      const from = new Map(this.states().map((s) => [s.name, { used: Math.ceil(s.used / this.#replicas), periodStartMs: s.periodStartMs }]));
      const meter = new UsageMeter(this.#shares(this.#quotas), new Map([...from].map(([name, k]) => [name, { period: this.#quotas.find((q) => q.name === name)?.period ?? 'day', ...k }])), this.#onChange, this.#now);
      meter.onCrossing = (c) => this.onCrossing(c);
      this.#alone = { meter, from };
      this.#log.warn({ replicas: this.#replicas }, `shared state: Redis unreachable; each quota is enforced here at limit ÷ ${this.#replicas} (on_unavailable: local)`);
    }
    return this.#alone.meter;
  }

  #shares(quotas: readonly QuotaSpec[]): QuotaSpec[] {
    return quotas.map((q) => ({ ...q, limit: Math.floor(q.limit / this.#replicas) }));
  }

  #key(name: string, periodStartMs: number): string {
    return this.#store.key('quota', name, periodStartMs);
  }

  async #reread(): Promise<void> {
    if (!this.#store.available || this.#quotas.length === 0) return;
    const now = this.#now();
    const quotas = this.#quotas;
    const starts = quotas.map((q) => periodOf(q.period, now).startMs);
    const values = await this.#store.mget(quotas.map((q, i) => this.#key(q.name, starts[i] as number))).catch(() => null);
    if (values === null) return;
    quotas.forEach((q, i) => this.#known.set(q.name, { used: Number(values[i] ?? 0), periodStartMs: starts[i] as number }));
  }
}
