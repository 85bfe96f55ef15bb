import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { periodOf, readUsageFile, stateOf } from '../usage/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const USAGE_USAGE = `usage: keyswap usage [--config FILE] [--json]

Each usage: quota: uses this period (as the running keyswap last saved them in state_dir/usage.json), the limit,
when the period ends (UTC) and its state: ok, warning (at or past warn_at: responses carry keyswap-usage-warning)
or exhausted (requests that would count get 429 until the period ends). The same numbers are the metrics
keyswap_usage_used, keyswap_usage_limit and keyswap_usage_period_end_seconds.`;

export async function usageCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, json: { type: 'boolean', default: false } }, strict: true });
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  if (config.usage.length === 0) {
    io.stdout.write(`${config.file} has no usage: quotas\n`);
    return EXIT.ok;
  }
  const saved = await readUsageFile(config.stateDir).catch((err: Error) => { throw new CliError(err.message, EXIT.runtime); });
  const now = Date.now();
  const rows = config.usage.map((q) => {
    const { startMs, endMs } = periodOf(q.period, now);
    const s = saved[q.name];
    // A count saved for an earlier period (or another period length) is over: this period starts at zero.
    const used = s !== undefined && s.period === q.period && Date.parse(s.period_start) === startMs ? s.used : 0;
    return { quota: q.name, used, limit: q.limit, period: q.period, period_end: new Date(endMs).toISOString(), state: stateOf(q, used) };
  });
  if (values.json) {
    io.stdout.write(`${JSON.stringify(rows, null, 1)}\n`);
    return EXIT.ok;
  }
  const table = [['QUOTA', 'USED', 'LIMIT', 'PERIOD', 'ENDS', 'STATE'], ...rows.map((r) => [r.quota, String(r.used), String(r.limit), r.period, r.period_end, r.state])];
  const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length))) ?? [];
  io.stdout.write(`${table.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')}\n`);
  return EXIT.ok;
}
