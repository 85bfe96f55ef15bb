import { readFile } from 'node:fs/promises';
import { lineHash } from './chain.js';

export type Finding =
  | { readonly kind: 'edited'; readonly file: string; readonly line: number }
  | { readonly kind: 'removed'; readonly file: string; readonly line: number; readonly missing: number }
  | { readonly kind: 'truncated'; readonly file: string; readonly line: number }
  | { readonly kind: 'torn'; readonly file: string; readonly line: number }
  | { readonly kind: 'not_a_record'; readonly file: string; readonly line: number }
  /** Lines 1…lines of a file were found at the path by a writer that had lost its file: not its chain. */
  | { readonly kind: 'foreign'; readonly file: string; readonly line: number; readonly lines: number }
  /** An audit_file_replaced record whose old file was still linked: moved away (a rotation without SIGUSR1). */
  | { readonly kind: 'file_moved'; readonly file: string; readonly line: number }
  /** An audit_file_replaced record whose old file was unlinked: deleted or overwritten while being written. */
  | { readonly kind: 'file_deleted'; readonly file: string; readonly line: number }
  /** An audit_recovered record: writes failed for a while and `refused` events were refused meanwhile. */
  | { readonly kind: 'recovered'; readonly file: string; readonly line: number; readonly refused: number; readonly code: string };

/**
 * Findings that are not tampering: a torn line (kill -9), a file moved away and followed (its records are in the
 * moved file; verify it first), an outage the writer recovered from (the refused requests never went upstream).
 */
const BENIGN: ReadonlySet<Finding['kind']> = new Set(['torn', 'file_moved', 'recovered']);

export interface Verification {
  /** True when no finding is tampering (see BENIGN). */
  readonly intact: boolean;
  readonly records: number;
  readonly findings: readonly Finding[];
}

interface Link { readonly hash: string | null; readonly seq: number | null; readonly at: { readonly file: string; readonly line: number } }

/**
 * Walks one or more audit files, oldest first (a rotated file, then its successor), checking every link: each
 * record's `prev` is the hash of the line before it and `seq` counts up by one. Names the first bad line and what
 * happened to it: edited (the line before a broken link), removed (a gap in seq), truncated (a file whose
 * successor links to a line it no longer has), torn (an incomplete line, as kill -9 leaves), not a record.
 *
 * The writer's own records are read too. `audit_recovered` is reported (benign): the refused events never got a
 * seq, so there is no gap to explain. `audit_file_replaced` is reported as `file_moved` (benign) or `file_deleted`
 * (tampering: the live log was deleted or overwritten). Its `prev` links to the last record of the file the
 * writer had lost. When it does not link to the line before it in the same file, the lines before it were what
 * the writer found at the path (someone put a file there): they are reported once as `foreign` (tampering), their
 * own findings and records are dropped, and the link is checked against the previous file given, if any.
 */
export async function verifyAuditFiles(files: readonly string[]): Promise<Verification> {
  let findings: Finding[] = [];
  let link: Link = { hash: null, seq: null, at: { file: '', line: 0 } };
  let records = 0;
  for (const [fileIndex, file] of files.entries()) {
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    // The chain as it stood when this file began: what a linking record after foreign lines is checked against.
    const atFileStart = { link, findings: findings.length, records };
    for (const [i, line] of lines.entries()) {
      const at = i + 1;
      let rec: { seq?: unknown; prev?: unknown; type?: unknown; old_file?: unknown; refused?: unknown; code?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        // A fragment that does not parse is what a write cut short leaves; the chain continues past it.
        findings.push({ kind: 'torn', file, line: at });
        continue;
      }
      if (typeof rec.seq !== 'number' || typeof rec.prev !== 'string') {
        findings.push({ kind: 'not_a_record', file, line: at });
        continue;
      }
      const isRelink = rec.type === 'audit_file_replaced';
      // Not linked to a record before it in this file: everything before it here is what the writer found.
      if (isRelink && at > 1 && !(link.at.file === file && rec.prev === link.hash)) {
        findings = [...findings.slice(0, atFileStart.findings), { kind: 'foreign', file, line: at, lines: at - 1 }];
        records = atFileStart.records;
        link = atFileStart.link;
      }
      if (link.hash !== null && link.seq !== null && rec.prev !== link.hash) {
        if (rec.seq > link.seq + 1) {
          findings.push(at === 1 && fileIndex > 0 ? { kind: 'truncated', file: link.at.file, line: link.at.line } : { kind: 'removed', file, line: at, missing: rec.seq - link.seq - 1 });
        } else {
          findings.push({ kind: 'edited', file: link.at.file, line: link.at.line });
        }
      }
      if (isRelink) findings.push({ kind: rec.old_file === 'linked' ? 'file_moved' : 'file_deleted', file, line: at });
      if (rec.type === 'audit_recovered') findings.push({ kind: 'recovered', file, line: at, refused: typeof rec.refused === 'number' ? rec.refused : 0, code: typeof rec.code === 'string' ? rec.code : 'unknown' });
      link = { hash: lineHash(line), seq: rec.seq, at: { file, line: at } };
      records++;
    }
  }
  return { intact: findings.every((f) => BENIGN.has(f.kind)), records, findings };
}

export function describeFinding(f: Finding): string {
  switch (f.kind) {
    case 'edited': return `${f.file}:${f.line}: edited (the next record's hash link does not match this line)`;
    case 'removed': return `${f.file}:${f.line}: ${f.missing} record(s) removed before this line (a gap in seq)`;
    case 'truncated': return `${f.file}: truncated after line ${f.line} (the next file links to records this one no longer has)`;
    case 'torn': return `${f.file}:${f.line}: torn (an incomplete write, as kill -9 leaves; not tampering)`;
    case 'not_a_record': return `${f.file}:${f.line}: not an audit record (no seq/prev)`;
    case 'foreign': return `${f.file}:1-${f.lines}: not keyswap's chain: a file put in place of the audit log; keyswap's records continue at line ${f.line}, linked to the file it was writing`;
    case 'file_moved': return `${f.file}:${f.line}: the audit file was moved away while keyswap wrote it (a rotation without SIGUSR1); keyswap continued here, linked to the moved file's last record (verify that file first; not tampering)`;
    case 'file_deleted': return `${f.file}:${f.line}: the audit file was deleted or overwritten while keyswap wrote it; keyswap continued here, linked to its last record, which only a copy of the old file still holds`;
    case 'recovered': return `${f.file}:${f.line}: the audit log could not be written (${f.code}); ${f.refused} event(s) were refused meanwhile and their requests failed closed (not tampering)`;
  }
}
