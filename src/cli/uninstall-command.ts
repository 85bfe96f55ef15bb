import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { installLayout, lookupUser, requireRoot, runTool } from './install-layout.js';

export const UNINSTALL_USAGE = `usage: keyswap uninstall [--purge]      (as root)

Stops and disables keyswap.service and keyswap.socket (when systemd runs) and removes the units, the CA copy and
the identity public key in /etc/keyswap.
Keeps /var/lib/keyswap (the store, the CA and audit keys), the store key credential, the keyswap user, the config
and the audit log. With --purge, also removes /var/lib/keyswap, the credentials (store and identity keys) and the
user: every stored secret is gone for good. The config and the audit log are kept either way.`;

export async function uninstallCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { purge: { type: 'boolean', default: false } }, strict: true });
  requireRoot('keyswap uninstall', 'it removes a systemd unit and files in /etc/keyswap owned by root');
  const lay = installLayout(io.env);
  const removed: string[] = [];
  if (lay.hasSystemd && existsSync(lay.unitFile)) {
    runTool('systemctl', ['disable', '--now', 'keyswap', 'keyswap.socket']);
    removed.push('stopped and disabled keyswap.service and keyswap.socket');
  }
  for (const file of [lay.unitFile, lay.socketFile, lay.caCopy, lay.identityPublic]) {
    if (!existsSync(file)) continue;
    await rm(file);
    removed.push(`removed ${file}`);
  }
  if (lay.hasSystemd && removed.length > 0) runTool('systemctl', ['daemon-reload']);
  if (values.purge) {
    for (const dir of [lay.stateDir, lay.credentialsDir]) {
      if (!existsSync(dir)) continue;
      await rm(dir, { recursive: true });
      removed.push(`removed ${dir}${dir === lay.stateDir ? ' (the store and every secret in it, the CA and audit keys)' : ' (the store key)'}`);
    }
    if (lookupUser(lay.user) !== null) {
      runTool('userdel', [lay.user]);
      removed.push(`removed the user ${lay.user}`);
    }
  }
  for (const line of removed) io.stdout.write(`${line}\n`);
  if (removed.length === 0) io.stdout.write('nothing to remove: keyswap is not installed\n');
  const kept = values.purge ? [lay.config, lay.logDir] : [lay.stateDir, lay.credential, `the user ${lay.user}`, lay.config, lay.logDir];
  io.stdout.write(`kept: ${kept.filter((k) => !k.startsWith('/') || existsSync(k)).join(', ')}${values.purge ? '' : ' (keyswap uninstall --purge removes the store, its key and the user)'}\n`);
  return EXIT.ok;
}
