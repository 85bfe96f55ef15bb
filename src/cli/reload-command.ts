import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { pidFile, runningServe } from './pid-file.js';

/**
 * `keyswap reload`: validates the config first (so a broken file is reported here, not only in the audit log),
 * sends SIGHUP to the running keyswap, and waits for the `config_reload` record it writes: prints the outcome,
 * exit 1 when the reload was refused (the running config stays).
 */
export async function reloadCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true });
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const running = await runningServe(config.stateDir);
  if (running === null) throw new CliError(`no running keyswap found for ${config.file} (${pidFile(config.stateDir)} names no live keyswap serve); start it with keyswap serve`, EXIT.runtime);
  const { pid } = running;
  const from = await stat(config.audit.path).then((s) => s.size, () => 0);
  process.kill(pid, 'SIGHUP');
  io.stdout.write(`reload requested (pid ${pid})\n`);
  const outcome = await awaitReloadRecord(config.audit.path, from, 10_000);
  if (outcome === null) {
    io.stdout.write(`no outcome recorded within 10 s; look for the config_reload record in ${config.audit.path}\n`);
    return EXIT.runtime;
  }
  if (outcome.ok) {
    io.stdout.write('reload applied\n');
    return EXIT.ok;
  }
  io.stdout.write(`reload refused; the running configuration stays:\n${outcome.errors.map((e) => `  ${e}`).join('\n')}\n`);
  return EXIT.runtime;
}

/** The first config_reload record written after byte `from` of the audit log, polled for up to `ms`. */
async function awaitReloadRecord(file: string, from: number, ms: number): Promise<{ ok: boolean; errors: string[] } | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const text = await readFile(file).then((b) => b.subarray(from).toString('utf8'), () => '');
    for (const line of text.split('\n')) {
      if (!line.includes('"config_reload"')) continue;
      try {
        const r = JSON.parse(line) as { type?: unknown; ok?: unknown; errors?: unknown };
        if (r.type === 'config_reload') return { ok: r.ok === true, errors: Array.isArray(r.errors) ? r.errors.map(String) : [] };
      } catch {
        // a line still being written: read again
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}
