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

/**
 * `keyswap reload`: validates the config first (so a broken file is reported here, not only in the audit log),
 * then sends SIGHUP to the running keyswap. The outcome is the `config_reload` audit record.
 */
export async function reloadCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true });
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  let pid: number;
  try {
    pid = Number((await readFile(pidFile(config.stateDir), 'utf8')).split('\n')[0]);
  } catch {
    throw new CliError(`no running keyswap found for ${config.file} (no ${pidFile(config.stateDir)}); start it with keyswap serve`, EXIT.runtime);
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!Number.isInteger(pid) || pid <= 0 || !cmdline.includes('serve')) {
    throw new CliError(`${pidFile(config.stateDir)} names process ${pid}, which is not a running keyswap serve`, EXIT.runtime);
  }
  process.kill(pid, 'SIGHUP');
  io.stdout.write(`reload requested (pid ${pid}); the outcome is the config_reload record in ${config.audit.path}\n`);
  return EXIT.ok;
}
