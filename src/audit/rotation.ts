import { readdirSync } from 'node:fs';
import path from 'node:path';

/** Where size rotation moves a full log: `<log>.<ISO time with ':' and '.' as '-'>`, so names sort by time. */
export function rotatedPath(log: string, at: Date): string {
  return `${log}.${at.toISOString().replace(/[:.]/g, '-')}`;
}

/** The files size rotation left beside `log`, oldest first (what `audit verify` checks before the live file). */
export function rotatedFiles(log: string): string[] {
  const dir = path.dirname(log);
  const base = path.basename(log);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(`${base}.`) && /^\d{4}-\d\d-\d\dT[\d-]+Z$/.test(n.slice(base.length + 1))).sort().map((n) => path.join(dir, n));
}
