import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

/**
 * Where `keyswap install` puts things. Every path sits under $KEYSWAP_INSTALL_ROOT (default `/`), so a test can
 * install into a temporary root as root without touching the real /etc and /var; under a root other than `/`,
 * systemd is never driven (its units and state are the real system's). $KEYSWAP_INSTALL_USER names the service
 * user (default `keyswap`), for the same reason.
 */
export interface InstallLayout {
  readonly root: string;
  readonly user: string;
  readonly etcDir: string;
  readonly config: string;
  readonly credentialsDir: string;
  /** The store key, loaded by the unit as the credential `keyswap-store-key`. */
  readonly credential: string;
  readonly caCopy: string;
  /** keyswap's identity key (root's credential) and its public half, which `keyswap run` checks. */
  readonly identityCredential: string;
  readonly identityPublic: string;
  readonly stateDir: string;
  readonly logDir: string;
  readonly unitFile: string;
  /** keyswap.socket: systemd holds the listener while the service restarts. */
  readonly socketFile: string;
  /** systemd is PID 1 here and the root is the real one: install may run systemctl. */
  readonly hasSystemd: boolean;
}

export function installLayout(env: Readonly<Record<string, string | undefined>>): InstallLayout {
  const root = path.resolve(env.KEYSWAP_INSTALL_ROOT ?? '/');
  const at = (p: string): string => path.join(root, p);
  return {
    root,
    user: env.KEYSWAP_INSTALL_USER ?? 'keyswap',
    etcDir: at('/etc/keyswap'),
    config: at('/etc/keyswap/keyswap.yaml'),
    credentialsDir: at('/etc/keyswap/credentials'),
    credential: at('/etc/keyswap/credentials/keyswap-store-key'),
    caCopy: at('/etc/keyswap/ca.pem'),
    identityCredential: at('/etc/keyswap/credentials/keyswap-identity-key'),
    identityPublic: at('/etc/keyswap/identity.pub'),
    stateDir: at('/var/lib/keyswap'),
    logDir: at('/var/log/keyswap'),
    unitFile: at('/etc/systemd/system/keyswap.service'),
    socketFile: at('/etc/systemd/system/keyswap.socket'),
    hasSystemd: root === '/' && existsSync('/run/systemd/system'),
  };
}

/** Refuses unless running as root, saying why the command needs it. */
export function requireRoot(verb: string, why: string): void {
  if (process.getuid?.() !== 0) throw new CliError(`${verb} must run as root: ${why}. Run it with sudo.`, EXIT.usage);
}

/** The user's uid and gid, or null when there is no such user. */
export function lookupUser(name: string): { readonly uid: number; readonly gid: number } | null {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Runs a system tool; a failure is a CliError naming the command and its stderr (never a secret: no values pass). */
export function runTool(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error !== undefined) throw new CliError(`${cmd} could not be run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`, EXIT.runtime);
  if (r.status !== 0) throw new CliError(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`, EXIT.runtime);
}

export function hasTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
