import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { loadConfig, type Config } from '../config/index.js';
import { lockedUids, lockScript, NftError, runNft, TABLE, unlockScript } from '../egress/index.js';
import { CliError, EXIT } from './exit-codes.js';
import { lookupUser, requireRoot } from './install-layout.js';
import type { CliIo } from './io.js';

export const EGRESS_USAGE = `usage: keyswap egress lock (--uid UID | --user NAME) [--transparent] [--dns ADDRESS] [--config FILE]
       keyswap egress unlock (--uid UID | --user NAME)
       keyswap egress status

As root: an agent's user may reach only keyswap. nftables rules in a table of keyswap's own (inet ${TABLE}) let the
user's sockets connect to keyswap's listeners (the config's listen and listen_tls) and, with --dns, to that DNS
resolver; everything else, IPv4 and IPv6, is rejected at once (a TCP reset or ICMP "prohibited"), so a tool that
ignores HTTPS_PROXY (curl --noproxy '*', a Go binary, raw sockets) fails fast instead of going around keyswap.
--transparent: the user's connections to port 443 (IPv4 and IPv6) are also redirected to keyswap's transparent
listener (the config's transparent: listen), which serves them by their TLS SNI as if they had come through the
proxy, so an agent with no proxy settings at all still gets its secrets injected; with transparent: listen_http,
its port 80 goes there too, each request served by its Host header. Other users, keyswap's own among them, are untouched. Locking again replaces the user's rules; the rules last until
unlock or a reboot (keyswap install --lock-egress-for USER reapplies them whenever the service starts).`;

export async function egressCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', default: 'keyswap.yaml' }, uid: { type: 'string' }, user: { type: 'string' }, dns: { type: 'string' }, transparent: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: true,
  });
  const [verb, ...rest] = positionals;
  if (rest.length > 0 || (verb !== 'lock' && verb !== 'unlock' && verb !== 'status')) throw new CliError(EGRESS_USAGE, EXIT.usage);
  requireRoot(`keyswap egress ${verb}`, 'nftables rules are the kernel\'s, and only root may change or list them');
  try {
    if (verb === 'status') return await status(io);
    const uid = uidFrom(values.uid, values.user);
    if (verb === 'unlock') {
      await runNft(['-f', '-'], unlockScript(uid));
      io.stdout.write(`unlocked UID ${uid}: its sockets may connect anywhere again\n`);
      return EXIT.ok;
    }
    const config = await loadConfig(path.resolve(io.cwd, values.config));
    await refuseKeyswapsOwnUser(config, uid);
    refuseOpenForwarding(config);
    if (values.dns !== undefined && (isIP(values.dns) === 0 || values.dns === '0.0.0.0' || values.dns === '::')) throw new CliError(`--dns ${values.dns}: expected the resolver's IP address`, EXIT.usage);
    if (values.transparent && config.transparent === null) throw new CliError(`--transparent needs a transparent listener in ${config.file}: add  transparent: { listen: 127.0.0.1:14324, uid: ${uid} }  and restart keyswap`, EXIT.usage);
    if (values.transparent && config.transparent !== null && config.transparent.uid !== uid) throw new CliError(`--transparent: ${config.file} serves transparent connections for UID ${config.transparent.uid} only (transparent.uid), not ${uid}; one transparent agent per keyswap`, EXIT.usage);
    const listeners = [config.listen, ...(config.listenTls === null ? [] : [config.listenTls.listen]), ...(values.transparent && config.transparent !== null ? [config.transparent.listen] : [])];
    if (listeners.some((l) => l.port === 0)) throw new CliError(`${config.file}: listen port 0 is chosen at start; a lock needs the port keyswap listens on`, EXIT.usage);
    await runNft(['-f', '-'], lockScript({ uid, listeners, dns: values.dns ?? null, transparentPort: values.transparent ? config.transparent?.listen.port ?? null : null, transparentHttpPort: values.transparent ? config.transparent?.listenHttp?.port ?? null : null }));
    io.stdout.write(`locked UID ${uid}: it may connect only to ${listeners.map((l) => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`).join(', ')}${values.dns === undefined ? '' : ` and DNS at ${values.dns}`}; everything else is rejected${values.transparent ? `; its HTTPS (IPv4 and IPv6) goes to the transparent listener${config.transparent?.listenHttp == null ? '' : ', and its port 80 to transparent.listen_http'}` : ''}\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof NftError) throw new CliError(err.message, EXIT.runtime);
    throw err;
  }
}

async function status(io: CliIo): Promise<number> {
  const locked = await lockedUids(TABLE);
  if (locked.length === 0) {
    io.stdout.write(`no UID is locked (no rules in nftables table inet ${TABLE})\n`);
    return EXIT.ok;
  }
  for (const l of locked) io.stdout.write(`UID ${l.uid}: may connect only to ${l.allows.join(', ') || 'nothing'}\n`);
  return EXIT.ok;
}

function uidFrom(uid: string | undefined, user: string | undefined): number {
  if ((uid === undefined) === (user === undefined)) throw new CliError(`give the agent's user: --uid UID or --user NAME\n${EGRESS_USAGE}`, EXIT.usage);
  if (user !== undefined) {
    const found = lookupUser(user);
    if (found === null) throw new CliError(`--user ${user}: no such user`, EXIT.usage);
    return checkedUid(found.uid, `--user ${user}`);
  }
  if (!/^[0-9]{1,10}$/.test(uid as string)) throw new CliError(`--uid ${uid}: expected a number`, EXIT.usage);
  return checkedUid(Number(uid), `--uid ${uid}`);
}

function checkedUid(uid: number, flag: string): number {
  if (uid === 0) throw new CliError(`${flag}: root cannot be locked (it could lift the lock anyway)`, EXIT.usage);
  if (uid > 4_294_967_294) throw new CliError(`${flag}: not a UID`, EXIT.usage);
  return uid;
}

/**
 * A lock confines the user to keyswap; under `forward_unmodified` keyswap tunnels a CONNECT to any host and port
 * (local services included), so the lock would confine nothing.
 */
export function refuseOpenForwarding(config: Config): void {
  if (config.unmatchedDestinationPolicy === 'deny') return;
  throw new CliError(`${config.file}: unmatched_destination_policy is forward_unmodified, so a locked user could still CONNECT through keyswap to any host and port (this machine's services included): set  unmatched_destination_policy: deny  first`, EXIT.usage);
}

/** keyswap itself must reach the internet: the user that owns its state directory is never locked. */
async function refuseKeyswapsOwnUser(config: Config, uid: number): Promise<void> {
  const owner = await stat(config.stateDir).then((s) => s.uid, () => null);
  if (owner === uid) throw new CliError(`UID ${uid} owns ${config.stateDir}: it is keyswap's own user, which must reach upstreams; lock the agent's user instead`, EXIT.usage);
}
