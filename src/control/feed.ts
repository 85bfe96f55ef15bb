import type { AuditEvent } from '../audit/index.js';

/** One row of the live view: every field from an audit record (no value, placeholder, header or query). */
export interface DecisionRow {
  readonly id: number;
  readonly ts: string;
  readonly type: string;
  readonly request_id: string;
  readonly client: string | null;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly secret: string | null;
  readonly decision: string;
  readonly reason: string | null;
}

export type FeedMessage = { readonly kind: 'decision'; readonly row: DecisionRow } | { readonly kind: 'changed' };

/** How many recent rows a new viewer is shown first. */
const KEEP = 500;
const CHANGE_COALESCE_MS = 250;

/**
 * The request decisions as the audit writer records them, fanned out to live viewers (the console's stream), with
 * the last few hundred kept for a viewer that just arrived; and a `changed` signal when the operator's state moves
 * (an approval waits, a client goes, lockdown). A slow viewer is the transport's to drop, never this.
 */
export class DecisionFeed {
  /**
   * The last KEEP decisions as they came (a ring): made into rows only when someone looks. Every request's records
   * pass through here, and a row (a date string, a copy of each field) per record cost the request path with no
   * console open.
   */
  readonly #ring: (Entry | undefined)[] = new Array<Entry | undefined>(KEEP);
  #head = 0;
  readonly #viewers = new Set<(m: FeedMessage) => void>();
  #next = 1;
  #changePending = false;

  /** Every audit event as it is written; those that are a request's decision become rows. */
  onAudit(e: AuditEvent): void {
    if (!ROW_TYPES.has(e.type)) return;
    const entry: Entry = { e, atMs: Date.now(), id: this.#next++ };
    this.#ring[this.#head] = entry;
    this.#head = (this.#head + 1) % KEEP;
    if (this.#viewers.size === 0) return;
    const row = rowOf(entry);
    if (row !== null) this.#send({ kind: 'decision', row });
  }

  /**
   * The operator's state moved. Coalesced: at most one signal per 250 ms, however many requests arrive to be held
   * (each viewer re-reads the status on it).
   */
  changed(): void {
    if (this.#changePending) return;
    this.#changePending = true;
    setTimeout(() => {
      this.#changePending = false;
      this.#send({ kind: 'changed' });
    }, CHANGE_COALESCE_MS).unref();
  }

  recent(): readonly DecisionRow[] {
    const out: DecisionRow[] = [];
    for (let i = 0; i < KEEP; i++) {
      const entry = this.#ring[(this.#head + i) % KEEP];
      const row = entry === undefined ? null : rowOf(entry);
      if (row !== null) out.push(row);
    }
    return out;
  }

  subscribe(viewer: (m: FeedMessage) => void): () => void {
    this.#viewers.add(viewer);
    return () => this.#viewers.delete(viewer);
  }

  #send(m: FeedMessage): void {
    for (const v of this.#viewers) v(m);
  }

}

interface Entry { readonly e: AuditEvent; readonly atMs: number; readonly id: number }

const ROW_TYPES: ReadonlySet<string> = new Set(['inject_decision', 'deny', 'honeytoken_triggered', 'response_scrubbed', 'mcp_tool_call', 'approval']);

/** A decision as the console's live view shows it; null for records that are none. */
function rowOf({ e, atMs, id }: Entry): DecisionRow | null {
  const base = (x: { request_id: string; method: string; client: string | null; destination: { host: string; port: number; path_prefix: string } }): Omit<DecisionRow, 'secret' | 'decision' | 'reason' | 'type'> => ({
    id, ts: new Date(atMs).toISOString(), request_id: x.request_id, client: x.client, method: x.method, host: x.destination.host, port: x.destination.port, path: x.destination.path_prefix,
  });
  switch (e.type) {
    case 'inject_decision': return { ...base(e), type: e.type, secret: e.secret_name, decision: e.decision, reason: e.reason };
    case 'deny': return { ...base(e), type: e.type, secret: null, decision: 'denied', reason: e.reason };
    case 'honeytoken_triggered': return { ...base(e), type: e.type, secret: e.secret_name, decision: 'honeytoken', reason: e.decision };
    case 'response_scrubbed': return { ...base(e), type: e.type, secret: e.secret_name, decision: e.action, reason: `${e.count} in the response` };
    case 'mcp_tool_call': return { ...base(e), type: e.type, secret: null, decision: e.decision, reason: `tool ${e.tool}` };
    case 'approval': return { ...base(e), type: e.type, secret: e.secret_names.join(','), decision: `approval ${e.step}`, reason: e.by };
    default: return null;
  }
}
