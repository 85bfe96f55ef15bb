import { createHmac, hash } from 'node:crypto';

/**
 * The keyed chain (K6). Every record carries `seq` (1, 2, 3 … across restarts and rotations), `prev` and, as its
 * last field, `mac`: HMAC-SHA256, under a key the agent cannot read, of the record's line up to that field. `prev`
 * is the previous record's `mac` (GENESIS for seq 1). So every line vouches for itself and for everything before
 * it, and rewriting history (an edit, a removal with seq and links recomputed, an inserted line) needs the key.
 * What the key cannot show is a tail cut off: the last records leave nothing after them. That needs an anchor
 * outside the file: serve logs the head (`audit head`) to its own log, which systemd keeps in the journal, and
 * `audit verify --head` checks the file against it.
 *
 * Version 1 records (before the key) have no `mac`; their successor's `prev` is the SHA-256 of their line.
 */
export const GENESIS = '0'.repeat(64);

/** The chain value after a record: its seq, and what the next record's `prev` must be. */
export interface ChainHead { readonly seq: number; readonly hash: string }

const MAC_FIELD = ',"mac":"';
/** `,"mac":"` + 64 hex digits + `"}`: the exact tail of a keyed line. */
const MAC_TAIL = MAC_FIELD.length + 64 + 2;

/** The audit key: opaque, it only computes MACs. */
export class AuditKey {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('an audit key is 32 bytes');
    this.#key = Buffer.from(key);
  }
  mac(text: string): string {
    return createHmac('sha256', this.#key).update(text).digest('hex');
  }
}

/** The line for a record: `unsealed` is the JSON object text without `mac`; returns the line and the head after it. */
export function sealLine(key: AuditKey, seq: number, unsealed: string): { readonly line: string; readonly head: ChainHead } {
  const mac = key.mac(unsealed);
  return { line: `${unsealed.slice(0, -1)}${MAC_FIELD}${mac}"}`, head: { seq, hash: mac } };
}

/** A keyed line's own MAC and the text it covers, or null when the line does not end in a `mac` field. */
export function splitMac(line: string): { readonly covered: string; readonly mac: string } | null {
  if (line.length < MAC_TAIL + 2 || !line.endsWith('"}')) return null;
  const at = line.length - MAC_TAIL;
  if (line.slice(at, at + MAC_FIELD.length) !== MAC_FIELD) return null;
  const mac = line.slice(at + MAC_FIELD.length, -2);
  if (!/^[0-9a-f]{64}$/.test(mac)) return null;
  return { covered: `${line.slice(0, at)}}`, mac };
}

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/**
 * The head after a line as the writer finds it at the end of a file: a keyed line's `mac`, or the SHA-256 of an
 * older (or foreign) line. The writer does not check the MAC here: it continues from what it finds, and a line it
 * should not have continued from fails `audit verify` on its own.
 */
export function headAfter(line: string): ChainHead {
  let seq = 0;
  try {
    const parsed = JSON.parse(line) as { seq?: unknown };
    if (typeof parsed.seq === 'number') seq = parsed.seq;
  } catch {
    // not a record: its hash still anchors the chain
  }
  return { seq, hash: splitMac(line)?.mac ?? sha256Hex(line) };
}
