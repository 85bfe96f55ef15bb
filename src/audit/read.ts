import { readFile } from 'node:fs/promises';
import type { AuditRecord } from './events.js';

export interface AuditFile {
  readonly records: AuditRecord[];
  /** A last line without its newline: a write cut short (kill -9, a full disk), reported rather than parsed. */
  readonly tornTail: boolean;
}

/** Parses an audit file. A torn last line is set aside; any other unparsable line is an error naming it. */
export async function readAuditFile(path: string): Promise<AuditFile> {
  const text = await readFile(path, 'utf8');
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const records = lines.map((line, i) => {
    try {
      return JSON.parse(line) as AuditRecord;
    } catch {
      throw new Error(`${path}:${i + 1}: not a JSON audit record`);
    }
  });
  return { records, tornTail: last !== '' };
}
