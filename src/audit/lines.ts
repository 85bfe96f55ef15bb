/** The audit log's lines: an event's entry, the sealed and chained lines for a batch, and torn-line vouching. */
import { sealLine, sha256Hex, type AuditKey, type ChainHead } from './chain.js';
import { AUDIT_SCHEMA_VERSION, type AuditEvent } from './events.js';

/** An event waiting for its line: stringified once at append time; seq and prev are given when it is written. */
export interface Entry { readonly ts: string; readonly body: string }

export function entry(event: AuditEvent): Entry {
  return { ts: isoNow(), body: JSON.stringify(event) };
}

let lastMs = -1;
let lastIso = '';

/** The time as ISO 8601, formatted once per millisecond: a busy proxy writes many records in each. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

export interface Chained { readonly text: string; readonly heads: readonly ChainHead[] }

/**
 * A writer's name in every record it writes (`chain_id`): a host or pod name and a nonce of this start, so the
 * records of several replicas merged in one place (a SIEM) still say whose chain each belongs to. Only letters,
 * digits, `.`, `_` and `-`, so it needs no escaping in the line.
 */
export function chainIdOf(name: string, nonce: string): string {
  const clean = name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63) || 'keyswap';
  return `${clean}-${nonce}`;
}

/** The lines for `entries` following `from`, each sealed with its MAC, and the head after each. */
export function chain(key: AuditKey, from: ChainHead, entries: readonly Entry[], chainId: string | null = null): Chained {
  let head = from;
  let text = '';
  const heads: ChainHead[] = [];
  const named = chainId === null ? '' : `"chain_id":"${chainId}",`;
  for (const e of entries) {
    // The same bytes as JSON.stringify({ ts, v, seq, prev, chain_id, ...event }): ts is ISO, prev hex, chain_id
    // plain (chainIdOf), body an object.
    const sealed = sealLine(key, head.seq + 1, `{"ts":"${e.ts}","v":${AUDIT_SCHEMA_VERSION},"seq":${head.seq + 1},"prev":"${head.hash}",${named}${e.body.slice(1)}`);
    head = sealed.head;
    heads.push(head);
    text += `${sealed.line}\n`;
  }
  return { text, heads };
}

/**
 * The record that vouches for an incomplete line the writer closed (verify accepts that line only with it), when
 * the fragment can be the start of the record keyswap was writing after `before`: its ts, schema version, the next
 * seq and the link to `before`. Text anyone else appended is not vouched for, and verify names it.
 */
export function tornNotices(fragment: string | null, before: ChainHead | null): Entry[] {
  if (fragment === null || !couldBeOurs(fragment, before)) return [];
  return [entry({ type: 'audit_torn_line', bytes: Buffer.byteLength(fragment), sha256: sha256Hex(fragment) })];
}

const ISO_SHAPE = '0000-00-00T00:00:00.000Z';

function couldBeOurs(fragment: string, before: ChainHead | null): boolean {
  const open = '{"ts":"';
  if (!(fragment.startsWith(open) || open.startsWith(fragment))) return false;
  const ts = fragment.slice(open.length, open.length + ISO_SHAPE.length);
  for (const [i, ch] of [...ts].entries()) if (ISO_SHAPE[i] === '0' ? !/\d/.test(ch) : ch !== ISO_SHAPE[i]) return false;
  const rest = fragment.slice(open.length + ISO_SHAPE.length);
  // Before the first complete line the writer continued some other head: only its shape can be checked.
  const expected = before === null ? `","v":${AUDIT_SCHEMA_VERSION},"seq":` : `","v":${AUDIT_SCHEMA_VERSION},"seq":${before.seq + 1},"prev":"${before.hash}",`;
  return rest.startsWith(expected) || expected.startsWith(rest);
}

