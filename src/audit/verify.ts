import { readFile } from 'node:fs/promises';
import { GENESIS, sha256Hex, splitMac, type AuditKey, type ChainHead } from './chain.js';

export type Finding =
  | { readonly kind: 'edited'; readonly file: string; readonly line: number }
  | { readonly kind: 'removed'; readonly file: string; readonly line: number; readonly missing: number }
  | { readonly kind: 'truncated'; readonly file: string; readonly line: number }
  | { readonly kind: 'torn'; readonly file: string; readonly line: number }
  | { readonly kind: 'not_a_record'; readonly file: string; readonly line: number }
  /** The first record is not seq 1 on the genesis link (nor the head given with --from): records before it are gone. */
  | { readonly kind: 'head_missing'; readonly file: string; readonly line: number; readonly seq: number }
  /** An unkeyed (version 1) record after keyed ones: written by someone without the key. */
  | { readonly kind: 'downgraded'; readonly file: string; readonly line: number }
  /**
   * Version 1 records (before the log was keyed) that no keyed record follows. A keyed record after them vouches
   * for them all: its `prev`, under the MAC, is the SHA-256 of the last one, whose own `prev` hashes the one before.
   */
  | { readonly kind: 'unkeyed'; readonly file: string; readonly records: number }
  /**
   * Records were cut from the end: the head keyswap logged (--head) is past the end of the files, or keyswap found
   * its log ending before the head it had recorded outside it (an audit_tail_cut record).
   */
  | { readonly kind: 'tail_cut'; readonly file: string; readonly last: number; readonly expected: number }
  /** The record at the head's seq is not the one keyswap logged. */
  | { readonly kind: 'head_mismatch'; readonly file: string; readonly line: number; readonly seq: number }
  /** Lines 1…lines of a file were found at the path by a writer that had lost its file: not its chain. */
  | { readonly kind: 'foreign'; readonly file: string; readonly line: number; readonly lines: number }
  /** An audit_file_replaced record whose old file was still linked: moved away (a rotation without SIGUSR1). */
  | { readonly kind: 'file_moved'; readonly file: string; readonly line: number }
  /** An audit_file_replaced record whose old file was unlinked: deleted or overwritten while being written. */
  | { readonly kind: 'file_deleted'; readonly file: string; readonly line: number }
  /** An audit_recovered record: writes failed for a while and `refused` events were refused meanwhile. */
  | { readonly kind: 'recovered'; readonly file: string; readonly line: number; readonly refused: number; readonly code: string };

/**
 * Findings that are not tampering: a torn line the writer vouched for (kill -9) or the last line of the log, a
 * file moved away and followed (its records are in the moved file; verify it first), an outage the writer
 * recovered from (the refused requests never went upstream).
 */
const BENIGN: ReadonlySet<Finding['kind']> = new Set(['torn', 'file_moved', 'recovered']);

export interface VerifyOptions {
  readonly key: AuditKey;
  /** Where the first file starts when earlier files are gone: the seq and mac of the record before its first. */
  readonly from?: ChainHead;
  /** A head keyswap logged (its `audit head` line): the files must hold that record. */
  readonly head?: ChainHead;
}

export interface Verification {
  /** True when no finding is tampering (see BENIGN). */
  readonly intact: boolean;
  readonly records: number;
  readonly findings: readonly Finding[];
  /** The last record's seq and mac: compare it with the last `audit head` keyswap logged. */
  readonly head: ChainHead | null;
  /** The log ends with a proxy_stop record: keyswap shut down cleanly after writing it. */
  readonly closed: boolean;
}

interface Link { readonly hash: string; readonly seq: number; readonly at: { readonly file: string; readonly line: number } }
interface Parsed { seq?: unknown; prev?: unknown; v?: unknown; type?: unknown; old_file?: unknown; refused?: unknown; code?: unknown; sha256?: unknown; found_seq?: unknown; expected_seq?: unknown }

interface Fragment { readonly file: string; readonly fileIndex: number; readonly line: number; readonly lastOfFile: boolean; readonly sha256: string; readonly endOfLog: boolean; vouched: boolean }

/** How far after its fragment the writer's audit_torn_line can be: a relink and a tail-cut record may come first. */
const VOUCH_REACH = 3;

/**
 * An audit_torn_line record at line `at` of file `fileIndex` vouches for one fragment with its hash: the nearest
 * one before it not vouched for yet, within VOUCH_REACH lines in the same file, or the last line of the file
 * before (where a writer that followed a moved file left it). A copy of that line anywhere else stays unvouched.
 */
function vouch(fragments: Fragment[], sha256: string, fileIndex: number, at: number): void {
  for (let i = fragments.length - 1; i >= 0; i--) {
    const f = fragments[i] as Fragment;
    const near = (f.fileIndex === fileIndex && at - f.line <= VOUCH_REACH) || (f.fileIndex === fileIndex - 1 && f.lastOfFile && at <= VOUCH_REACH);
    if (!near) continue;
    if (!f.vouched && f.sha256 === sha256) {
      f.vouched = true;
      return;
    }
  }
}

/**
 * Walks one or more audit files, oldest first (rotated files, then the current one), checking every record:
 *  - its MAC under the audit key (an edited line, or one written without the key, fails here);
 *  - its link: `prev` is the previous record's mac and `seq` counts up by one; the first record is seq 1 on the
 *    genesis link, or follows the head given as `from`;
 *  - every line is a record, except an incomplete line that a later record of the writer (audit_torn_line)
 *    vouches for by its hash, and the last line of the log (a write cut short that no restart has closed yet).
 * With `head`, the files must hold that record (what keyswap logged outside the file), so a cut tail shows.
 *
 * The writer's own records are read too. `audit_recovered` is reported (benign): the refused events never got a
 * seq, so there is no gap to explain. `audit_file_replaced` is reported as `file_moved` (benign) or `file_deleted`
 * (tampering: the live log was deleted or overwritten). When it does not link to the line before it in the same
 * file, the lines before it were what the writer found at the path (someone put a file there): they are reported
 * once as `foreign` (tampering), their own findings and records are dropped, and the link is checked against the
 * previous file given, if any.
 */
export async function verifyAuditFiles(files: readonly string[], opts: VerifyOptions): Promise<Verification> {
  let findings: Finding[] = [];
  const start: Link = { hash: opts.from?.hash ?? GENESIS, seq: opts.from?.seq ?? 0, at: { file: '', line: 0 } };
  let link = start;
  let records = 0;
  let keyed = false;
  const unkeyed = { file: '', records: 0 };
  let lastType: unknown = null;
  let headSeen: 'match' | 'differs' | null = null;
  // Lines that are not JSON, by hash: each must be vouched for by an audit_torn_line record close after it (see
  // vouch()), one record for one line.
  let fragments: Fragment[] = [];
  for (const [fileIndex, file] of files.entries()) {
    const lines = (await readFile(file, 'utf8')).split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const atFileStart = { link, findings: findings.length, records };
    for (const [i, line] of lines.entries()) {
      const at = i + 1;
      let rec: Parsed;
      try {
        rec = JSON.parse(line) as Parsed;
      } catch {
        fragments.push({ file, fileIndex, line: at, lastOfFile: at === lines.length, sha256: sha256Hex(line), endOfLog: fileIndex === files.length - 1 && at === lines.length, vouched: false });
        continue;
      }
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec) || typeof rec.seq !== 'number' || typeof rec.prev !== 'string') {
        findings.push({ kind: 'not_a_record', file, line: at });
        continue;
      }
      const sealed = typeof rec.v === 'number' && rec.v >= 2 ? splitMac(line) : null;
      const macOk = sealed !== null && opts.key.mac(sealed.covered) === sealed.mac;
      if (typeof rec.v === 'number' && rec.v >= 2) {
        keyed = true;
        unkeyed.records = 0;
        if (!macOk) findings.push({ kind: 'edited', file, line: at });
      } else if (keyed) {
        findings.push({ kind: 'downgraded', file, line: at });
      } else {
        if (unkeyed.records++ === 0) unkeyed.file = file;
      }
      const isRelink = rec.type === 'audit_file_replaced';
      // Not linked to a record before it in this file: everything before it here is what the writer found.
      if (isRelink && at > 1 && !(link.at.file === file && rec.prev === link.hash)) {
        findings = [...findings.slice(0, atFileStart.findings), { kind: 'foreign', file, line: at, lines: at - 1 }];
        if (sealed !== null && !macOk) findings.push({ kind: 'edited', file, line: at });
        records = atFileStart.records;
        link = atFileStart.link;
        fragments = fragments.filter((f) => f.file !== file);
      }
      if (rec.prev !== link.hash) {
        if (link === start) findings.push({ kind: 'head_missing', file, line: at, seq: rec.seq });
        else if (rec.seq > link.seq + 1) findings.push(at === 1 && fileIndex > 0 ? { kind: 'truncated', file: link.at.file, line: link.at.line } : { kind: 'removed', file, line: at, missing: rec.seq - link.seq - 1 });
        else if (!findings.some((f) => f.kind === 'edited' && f.file === link.at.file && f.line === link.at.line)) findings.push({ kind: 'edited', file: link.at.file, line: link.at.line });
      }
      if (isRelink) findings.push({ kind: rec.old_file === 'linked' ? 'file_moved' : 'file_deleted', file, line: at });
      if (rec.type === 'audit_recovered') findings.push({ kind: 'recovered', file, line: at, refused: typeof rec.refused === 'number' ? rec.refused : 0, code: typeof rec.code === 'string' ? rec.code : 'unknown' });
      if (rec.type === 'audit_torn_line' && macOk && typeof rec.sha256 === 'string') vouch(fragments, rec.sha256, fileIndex, at);
      if (rec.type === 'audit_tail_cut') findings.push({ kind: 'tail_cut', file, last: typeof rec.found_seq === 'number' ? rec.found_seq : 0, expected: typeof rec.expected_seq === 'number' ? rec.expected_seq : 0 });
      link = { hash: sealed?.mac ?? sha256Hex(line), seq: rec.seq, at: { file, line: at } };
      if (opts.head !== undefined && rec.seq === opts.head.seq) headSeen = link.hash === opts.head.hash ? 'match' : 'differs';
      if (headSeen === 'differs' && rec.seq === opts.head?.seq) findings.push({ kind: 'head_mismatch', file, line: at, seq: rec.seq });
      lastType = rec.type;
      records++;
    }
  }
  for (const f of fragments) findings.push({ kind: f.vouched || f.endOfLog ? 'torn' : 'not_a_record', file: f.file, line: f.line });
  if (unkeyed.records > 0) findings.push({ kind: 'unkeyed', file: unkeyed.file, records: unkeyed.records });
  if (opts.head !== undefined && headSeen === null) findings.push({ kind: 'tail_cut', file: files.at(-1) ?? '', last: link.seq, expected: opts.head.seq });
  const sorted = [...findings.filter((f) => !BENIGN.has(f.kind)), ...findings.filter((f) => BENIGN.has(f.kind))];
  return { intact: findings.every((f) => BENIGN.has(f.kind)), records, findings: sorted, head: link === start ? null : { seq: link.seq, hash: link.hash }, closed: lastType === 'proxy_stop' };
}

export function describeFinding(f: Finding): string {
  switch (f.kind) {
    case 'edited': return `${f.file}:${f.line}: edited (its MAC or the next record's link does not match this line: changed, or written without the audit key)`;
    case 'removed': return `${f.file}:${f.line}: ${f.missing} record(s) removed before this line (a gap in seq)`;
    case 'truncated': return `${f.file}: truncated after line ${f.line} (the next file links to records this one no longer has)`;
    case 'torn': return `${f.file}:${f.line}: torn (an incomplete write, as kill -9 leaves; not tampering; its text is not a record and proves nothing)`;
    case 'not_a_record': return `${f.file}:${f.line}: not an audit record, and no record of keyswap's vouches for it (inserted)`;
    case 'head_missing': return `${f.file}:${f.line}: the first record is seq ${f.seq}, not the start of the chain: records before it are missing (give the rotated files oldest first, or --from SEQ:MAC with the head keyswap logged when the older files were removed)`;
    case 'downgraded': return `${f.file}:${f.line}: an unkeyed (version 1) record after keyed ones: written without the audit key`;
    case 'unkeyed': return `${f.file}: ${f.records} unkeyed (version 1) record(s) and no keyed record after them: nothing proves them; anyone who could write the file could have written them`;
    case 'tail_cut': return `${f.file}: ends at seq ${f.last}, but keyswap logged seq ${f.expected} as written: records were cut from the end`;
    case 'head_mismatch': return `${f.file}:${f.line}: seq ${f.seq} is not the record keyswap logged as its head`;
    case 'foreign': return `${f.file}:1-${f.lines}: not keyswap's chain: a file put in place of the audit log; keyswap's records continue at line ${f.line}, linked to the file it was writing`;
    case 'file_moved': return `${f.file}:${f.line}: the audit file was moved away while keyswap wrote it (a rotation without SIGUSR1); keyswap continued here, linked to the moved file's last record (verify that file first; not tampering)`;
    case 'file_deleted': return `${f.file}:${f.line}: the audit file was deleted or overwritten while keyswap wrote it; keyswap continued here, linked to its last record, which only a copy of the old file still holds`;
    case 'recovered': return `${f.file}:${f.line}: the audit log could not be written (${f.code}); ${f.refused} event(s) were refused meanwhile and their requests failed closed (not tampering)`;
  }
}
