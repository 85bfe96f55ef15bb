import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

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

/**
 * `keyswap reload`: validates the config first (so a broken file is reported here, not only in the audit log),
 * then sends SIGHUP to the running keyswap. The outcome is the `config_reload` audit record.
 */
export async function reloadCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true });
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const running = await runningServe(config.stateDir);
  if (running === null) throw new CliError(`no running keyswap found for ${config.file} (${pidFile(config.stateDir)} names no live keyswap serve); start it with keyswap serve`, EXIT.runtime);
  const { pid } = running;
  process.kill(pid, 'SIGHUP');
  io.stdout.write(`reload requested (pid ${pid}); the outcome is the config_reload record in ${config.audit.path}\n`);
  return EXIT.ok;
}
