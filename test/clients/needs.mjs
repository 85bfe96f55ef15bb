// Why a client cannot run on this machine, or null: each missing runtime, package or module named with its fix.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const CLIENTS_DIR = path.dirname(new URL(import.meta.url).pathname);
const probe = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 15_000 }).status === 0;
const onPath = (cmd) => (cmd.includes('/') ? existsSync(cmd) : probe('sh', ['-c', 'command -v "$1"', 'sh', cmd]));

/** @param {import('./client-catalog.d.mts').Need} need */
function missing(need) {
  if ('cmd' in need) return onPath(need.cmd) ? null : `${need.cmd} is not installed (.ci/run installs it)`;
  if ('npm' in need) {
    return existsSync(path.join(CLIENTS_DIR, 'node', 'node_modules', need.npm, 'package.json')) ? null : `npm package ${need.npm} is missing: run npm ci in test/clients/node`;
  }
  if ('python' in need) return probe('/usr/bin/python3', ['-c', `import ${need.python}`]) ? null : `python module ${need.python} is missing${need.why ? `: ${need.why}` : ' (.ci/run installs it)'}`;
  if ('perl' in need) return probe('perl', [`-M${need.perl}`, '-e', '1']) ? null : `perl module ${need.perl} is missing (.ci/run installs it)`;
  if ('php' in need) return probe('php', ['-r', `exit(extension_loaded('${need.php}') ? 0 : 1);`]) ? null : `php extension ${need.php} is missing (.ci/run installs it)`;
  return 'unknown need';
}

const memo = new Map();
/** @param {readonly import('./client-catalog.d.mts').Need[]} needs */
export function skipReason(needs) {
  for (const need of needs) {
    const key = JSON.stringify(need);
    if (!memo.has(key)) memo.set(key, missing(need));
    if (memo.get(key) !== null) return memo.get(key);
  }
  return null;
}
