import net from 'node:net';
import { CliError, EXIT } from './exit-codes.js';

/** 127.0.0.0/8, ::1 and `localhost`: the only addresses keyswap listens on without --allow-non-loopback. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/** What a host that can reach each kind of listener could do there. */
const EXPOSURE = {
  proxy: 'could send requests through keyswap with your secrets',
  metrics: 'could read the names of your secrets and clients',
  ui: 'could try to log in to the operator console (revoke, lockdown, approvals)',
} as const;

/**
 * The one decision on where keyswap may listen, for every listener it opens: the proxy (serve, run, quickstart,
 * demo all start it through the same code) and the metrics endpoint. Loopback, unless the operator passed
 * --allow-non-loopback because another layer restricts who connects. `where` names the setting in the error
 * (`FILE: listen`, `--metrics HOST:PORT`). Throws a CliError (exit 2).
 */
export function checkListenAddress(kind: keyof typeof EXPOSURE, where: string, host: string, allowNonLoopback: boolean): void {
  if (allowNonLoopback || isLoopback(host)) return;
  throw new CliError(
    `${where}: ${host} is not a loopback address; any host that can reach it ${EXPOSURE[kind]}. ` +
      'Use 127.0.0.1, or pass --allow-non-loopback if another layer (a container network, a firewall) restricts who connects.',
    EXIT.usage,
  );
}
