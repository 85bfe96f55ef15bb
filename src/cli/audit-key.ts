import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';

/**
 * Where the audit chain's key is: the systemd credential `keyswap-audit-key` when the unit loads one (read-only:
 * never created), else `audit.key_file` (default `<state_dir>/audit.key`, created 0600 by the first serve).
 */
export function auditKeyLocation(config: Config, env: Readonly<Record<string, string | undefined>>): { readonly file: string; readonly create: boolean } {
  if (env.CREDENTIALS_DIRECTORY) {
    const credential = path.join(env.CREDENTIALS_DIRECTORY, 'keyswap-audit-key');
    if (existsSync(credential)) return { file: credential, create: false };
  }
  return { file: config.audit.keyFile, create: true };
}
