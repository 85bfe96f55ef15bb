import { open, type FileHandle } from 'node:fs/promises';
import type { AuditRecord } from './events.js';

/** The OCSF schema version the copy follows (https://schema.ocsf.io/1.3.0). */
export const OCSF_VERSION = '1.3.0';

const HTTP_ACTIVITY = 4002; // Network Activity category (4)
const API_ACTIVITY = 6003; // Application Activity category (6)
const APPLICATION_LIFECYCLE = 6002;

/** OCSF HTTP Activity's activity_id per method (1.3.0); others are 99, Other. */
const HTTP_ACTIVITIES: Readonly<Record<string, number>> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8, PATCH: 9 };

/** Fields keyswap writes that OCSF has a place for; the rest go under `unmapped`, as OCSF asks. */
const MAPPED = new Set(['ts', 'v', 'seq', 'prev', 'mac', 'chain_id', 'type', 'request_id', 'method', 'destination', 'client']);

/**
 * One audit record as an OCSF event, for SIEMs that read OCSF (Amazon Security Lake, Splunk, Sentinel via its
 * parsers): requests are HTTP Activity (4002), keyswap's start, stop and reloads Application Lifecycle (6002), and
 * the rest (operators, shared state, alerts, the log's own records) API Activity (6003). `metadata.uid` is the
 * record's place in its chain (chain_id:seq) and `unmapped.keyswap` keeps every field, its `mac` included, so a
 * record found in the SIEM can be checked against the chain it came from. The chain stays the record of truth: this
 * copy carries no MAC of its own.
 */
export function toOcsf(r: AuditRecord, productVersion: string): Record<string, unknown> {
  const rec = r as AuditRecord & Record<string, unknown>;
  const time = Date.parse(r.ts);
  const denied = rec.decision === 'denied' || r.type === 'deny' || r.type === 'tunnel_failed' || (r.type === 'approval' && rec.step !== 'requested' && rec.step !== 'granted') || rec.outcome === 'failed';
  const metadata = {
    version: OCSF_VERSION,
    product: { name: 'keyswap', vendor_name: 'keyswap', version: productVersion },
    uid: `${r.chain_id ?? 'unnamed'}:${r.seq}`,
    ...(typeof rec.request_id === 'string' ? { correlation_uid: rec.request_id } : {}),
    original_time: r.ts,
    log_name: 'keyswap-audit',
  };
  const unmapped = { keyswap: Object.fromEntries(Object.entries(rec).filter(([k]) => !MAPPED.has(k) || k === 'seq' || k === 'mac' || k === 'chain_id' || k === 'type')) };
  const status = { status_id: denied ? 2 : 1, status: denied ? 'Failure' : 'Success', severity_id: r.type === 'honeytoken_triggered' ? 4 : denied ? 3 : 1 };
  const actor = { user: { name: typeof rec.client === 'string' ? rec.client : typeof rec.actor === 'string' ? `operator:${rec.actor}` : 'keyswap' } };
  const destination = rec.destination as { host: string; port: number; path_prefix: string } | undefined;
  if (destination !== undefined && typeof rec.request_id === 'string') {
    const method = typeof rec.method === 'string' ? rec.method : 'CONNECT';
    // Own keys only: a method spelled `constructor` or `__proto__` (HTTP/2 lets an agent send one) is Other.
    const activity = Object.hasOwn(HTTP_ACTIVITIES, method) ? (HTTP_ACTIVITIES[method] as number) : 99;
    return {
      class_uid: HTTP_ACTIVITY, category_uid: 4, activity_id: activity, type_uid: HTTP_ACTIVITY * 100 + activity,
      time, ...status, metadata, actor,
      action_id: denied ? 2 : 1, disposition_id: denied ? 2 : 1,
      dst_endpoint: { hostname: destination.host, port: destination.port },
      http_request: { http_method: method, url: { hostname: destination.host, port: destination.port, path: destination.path_prefix, scheme: 'https' } },
      ...(typeof rec.status === 'number' ? { http_response: { code: rec.status } } : {}),
      message: r.type,
      unmapped,
    };
  }
  if (r.type === 'proxy_start' || r.type === 'proxy_stop' || r.type === 'config_reload') {
    const activity = r.type === 'proxy_start' ? 3 : r.type === 'proxy_stop' ? 4 : 99; // Start, Stop, Other
    return {
      class_uid: APPLICATION_LIFECYCLE, category_uid: 6, activity_id: activity, type_uid: APPLICATION_LIFECYCLE * 100 + activity,
      time, ...status, metadata, app: { name: 'keyswap', vendor_name: 'keyswap', version: productVersion }, message: r.type, unmapped,
    };
  }
  return {
    class_uid: API_ACTIVITY, category_uid: 6, activity_id: 99, type_uid: API_ACTIVITY * 100 + 99,
    time, ...status, metadata, actor,
    api: { operation: typeof rec.action === 'string' ? `${r.type}.${rec.action}` : r.type, service: { name: 'keyswap' } },
    message: r.type,
    unmapped,
  };
}

/** Where the copy of `audit.jsonl` goes: `audit.ocsf.jsonl` beside it. */
export function ocsfPath(auditPath: string): string {
  return auditPath.endsWith('.jsonl') ? `${auditPath.slice(0, -'.jsonl'.length)}.ocsf.jsonl` : `${auditPath}.ocsf.jsonl`;
}

/**
 * `audit.format: ocsf`: every line the chain gains, mapped and appended to the copy, in order, after the chain
 * has it on disk. Not fsynced per record and never in the way of a request: a copy lost in a crash is rebuilt from
 * the chain (`keyswap audit ocsf FILE`). Reopened with the chain (SIGUSR1), so logrotate treats both alike.
 */
export class OcsfCopy {
  readonly #path: string;
  readonly #version: string;
  #fh: Promise<FileHandle>;
  #tail: Promise<void> = Promise.resolve();
  readonly #onError: (err: Error) => void;

  constructor(auditPath: string, productVersion: string, onError: (err: Error) => void) {
    this.#path = ocsfPath(auditPath);
    this.#version = productVersion;
    this.#onError = onError;
    this.#fh = open(this.#path, 'a', 0o600);
  }

  get path(): string {
    return this.#path;
  }

  /** Lines the chain just wrote (complete, newline-terminated records). */
  lines(text: string): void {
    let out: string;
    try {
      out = text.split('\n').filter((l) => l.startsWith('{')).map((l) => `${JSON.stringify(toOcsf(JSON.parse(l) as AuditRecord, this.#version))}\n`).join('');
    } catch (err) {
      // Called by the writer after its lines are on disk: a copy that cannot be made must never read as the chain failing.
      this.#onError(err as Error);
      return;
    }
    this.#tail = this.#tail.then(async () => { await (await this.#fh).appendFile(out); }).catch((err: Error) => this.#onError(err));
  }

  reopen(): void {
    const old = this.#fh;
    this.#tail = this.#tail.then(async () => { await (await old).close(); });
    this.#fh = open(this.#path, 'a', 0o600);
  }

  async close(): Promise<void> {
    await this.#tail;
    await (await this.#fh).close();
  }
}
