import { readFile } from 'node:fs/promises';
import { lineHash } from './chain.js';

export type Finding =
  | { readonly kind: 'edited'; readonly file: string; readonly line: number }
  | { readonly kind: 'removed'; readonly file: string; readonly line: number; readonly missing: number }
  | { readonly kind: 'truncated'; readonly file: string; readonly line: number }
  | { readonly kind: 'torn'; readonly file: string; readonly line: number }
  | { readonly kind: 'not_a_record'; readonly file: string; readonly line: number };

export interface Verification {
  /** True when no finding is tampering (a torn line after kill -9 is not). */
  readonly intact: boolean;
  readonly records: number;
  readonly findings: readonly Finding[];
}

/**
 * Walks one or more audit files, oldest first (a rotated file, then its successor), checking every link: each
 * record's `prev` is the hash of the line before it and `seq` counts up by one. Names the first bad line and what
 * happened to it: edited (the line before a broken link), removed (a gap in seq), truncated (a file whose
 * successor links to a line it no longer has), torn (an incomplete line, as kill -9 leaves), not a record.
 */
export async function verifyAuditFiles(files: readonly string[]): Promise<Verification> {
  const findings: Finding[] = [];
  let prevHash: string | null = null;
  let prevSeq: number | null = null;
  let prevAt = { file: '', line: 0 };
  let records = 0;
  for (const [fileIndex, file] of files.entries()) {
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const [i, line] of lines.entries()) {
      const at = i + 1;
      let rec: { seq?: unknown; prev?: unknown };
      try {
        rec = JSON.parse(line) as { seq?: unknown; prev?: unknown };
      } catch {
        // A fragment that does not parse is what a write cut short leaves; the chain continues past it.
        findings.push({ kind: 'torn', file, line: at });
        continue;
      }
      if (typeof rec.seq !== 'number' || typeof rec.prev !== 'string') {
        findings.push({ kind: 'not_a_record', file, line: at });
        continue;
      }
      if (prevHash !== null && prevSeq !== null && rec.prev !== prevHash) {
        if (rec.seq > prevSeq + 1) {
          findings.push(at === 1 && fileIndex > 0 ? { kind: 'truncated', file: prevAt.file, line: prevAt.line } : { kind: 'removed', file, line: at, missing: rec.seq - prevSeq - 1 });
        } else {
          findings.push({ kind: 'edited', file: prevAt.file, line: prevAt.line });
        }
      }
      prevAt = { file, line: at };
      prevHash = lineHash(line);
      prevSeq = rec.seq;
      records++;
    }
  }
  return { intact: findings.every((f) => f.kind === 'torn'), records, findings };
}

export function describeFinding(f: Finding): string {
  switch (f.kind) {
    case 'edited': return `${f.file}:${f.line}: edited (the next record's hash link does not match this line)`;
    case 'removed': return `${f.file}:${f.line}: ${f.missing} record(s) removed before this line (a gap in seq)`;
    case 'truncated': return `${f.file}: truncated after line ${f.line} (the next file links to records this one no longer has)`;
    case 'torn': return `${f.file}:${f.line}: torn (an incomplete write, as kill -9 leaves; not tampering)`;
    case 'not_a_record': return `${f.file}:${f.line}: not an audit record (no seq/prev)`;
  }
}
