import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The pid file contract: `<state_dir>/keyswap.pid` holds the pid of a running `keyswap serve` (or quickstart) and,
 * on a second line, the proxy URL it actually bound (for `keyswap run`, which may find port 0 in the config).
 */
/** Where `keyswap serve` records its pid, so `keyswap reload` can find it. */
export function pidFile(stateDir: string): string {
  return path.join(stateDir, 'keyswap.pid');
}

/** What the pid file says when it names a live `keyswap serve` (or quickstart): its pid and proxy URL. */
export async function runningServe(stateDir: string): Promise<{ readonly pid: number; readonly url: string | undefined } | null> {
  const [pidText, url] = (await readFile(pidFile(stateDir), 'utf8').catch(() => '')).split('\n');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('serve') || cmdline.includes('quickstart') ? { pid, url } : null;
}

