import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { decryptedHosts } from '../policy/index.js';
import { describeConstraints, openCa, rotateCa, type LocalCa } from '../tls/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { runningServe } from './pid-file.js';

export const CA_USAGE = `usage: keyswap ca show [--config FILE]
       keyswap ca rotate [--config FILE]

show    where keyswap's CA certificate is (what agents trust), its SHA-256 fingerprint, validity and name
        constraints (the hosts its key may sign for).
rotate  a new CA key and certificate replace the old ones; the old key is not kept. The new CA is valid for a
        year and constrained to the hosts the config decrypts (none under tls_termination: all). Rotate when
        doctor says so: yearly, after adding a binding for a new host, or on a suspected key leak. A running
        keyswap goes on signing with the old CA until it is restarted; agents then need the new ca.pem.`;

export async function caCommand(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== 'show' && verb !== 'rotate') throw new CliError(`${verb === undefined ? 'missing ca command' : `unknown ca command ${verb}`}\n${CA_USAGE}`, EXIT.usage);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true });
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  if (verb === 'show') {
    const ca = await openCa(config.stateDir, { create: false });
    io.stdout.write(`${describe(ca)}agents trust it through: keyswap run -- CMD (or eval "$(keyswap env)")\n`);
    return EXIT.ok;
  }
  const before = await openCa(config.stateDir, { create: false }).then((ca) => ca.fingerprintSha256, () => null);
  const ca = await rotateCa(config.stateDir, decryptedHosts(config));
  io.stdout.write(`rotated the CA in ${config.stateDir}\n${before === null ? '' : `old sha256: ${before}\n`}${describe(ca)}`);
  const pid = (await runningServe(config.stateDir))?.pid ?? null;
  io.stdout.write(
    (pid === null ? '' : `keyswap (pid ${pid}) still signs with the old CA: restart it (systemctl restart keyswap, or stop and start keyswap serve)\n`) +
      'next: agents started by keyswap run trust the new CA at their next start; replace every copy of the old ca.pem ' +
      `(e.g. /etc/keyswap/ca.pem) with ${ca.certPath}\n`,
  );
  return EXIT.ok;
}

function describe(ca: LocalCa): string {
  const x509 = new X509Certificate(ca.certPem);
  const daysLeft = Math.floor((Date.parse(x509.validTo) - Date.now()) / 86_400_000);
  return (
    `certificate: ${ca.certPath}\nsha256: ${x509.fingerprint256}\nsubject: ${x509.subject.replace(/\n/g, ', ')}\n` +
    `valid until: ${new Date(x509.validTo).toISOString()} (${daysLeft} days)\nname constraints: ${describeConstraints(ca.nameConstraints)}\n`
  );
}
