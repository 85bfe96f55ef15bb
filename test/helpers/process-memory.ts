import { readFileSync } from 'node:fs';

/** A process's resident memory in bytes, from /proc (0 when it cannot be read). */
export function rssBytes(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}
