import { hash } from 'node:crypto';

/**
 * The hash chain (K6): every record carries `seq` (1, 2, 3 … across restarts and rotations) and `prev`, the
 * SHA-256 of the previous line's exact bytes (without its newline). Editing a line breaks the next line's `prev`;
 * removing lines leaves a gap in `seq`; a file cut short at the end no longer matches the link its successor holds.
 */
export const GENESIS = '0'.repeat(64);

export interface ChainHead { readonly seq: number; readonly hash: string }

export function lineHash(line: string): string {
  // The one-shot form: no Hash object per record (measurably cheaper on the hot path).
  return hash('sha256', line, 'hex');
}

/** The head after a line: its seq when it has one (older or foreign lines count as seq 0). */
export function headAfter(line: string): ChainHead {
  let seq = 0;
  try {
    const parsed = JSON.parse(line) as { seq?: unknown };
    if (typeof parsed.seq === 'number') seq = parsed.seq;
  } catch {
    // not a record: its hash still anchors the chain
  }
  return { seq, hash: lineHash(line) };
}
