import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { decryptedHosts } from '../policy/index.js';
import type { LocalCa } from '../tls/index.js';
import { CliError, EXIT } from './exit-codes.js';

/** The fix for a CA that no longer fits: said the same way by serve, reload and doctor. */
export const ROTATE_FIX =
  'keyswap ca rotate, then (re)start keyswap and restart agents that copied ca.pem (agents started by keyswap run pick up the new CA on their own)';

/** Below this many days left, serve warns and doctor reports the CA's expiry. */
export const CA_EXPIRY_WARNING_DAYS = 30;

/**
 * Refuses a config that decrypts a host the CA's name constraints leave out (a binding added after the CA was
 * made): every agent would reject the leaf for it, so say why once, here, instead of in each agent's TLS error.
 * keyswap never rotates on its own: agents that copied ca.pem would then reject every host.
 */
export function requireCoverage(ca: LocalCa, config: Config): void {
  const missing = ca.uncovered(decryptedHosts(config));
  if (missing.length === 0) return;
  throw new CliError(
    `${config.file} decrypts ${missing.join(', ')}, which the name constraints of keyswap's CA (${ca.certPath}) do not cover; fix: ${ROTATE_FIX}`,
    EXIT.runtime,
  );
}

function daysLeft(ca: Pick<LocalCa, 'notAfter'>, now: Date): number {
  return Math.floor((ca.notAfter.getTime() - now.getTime()) / 86_400_000);
}

/** An expired CA is refused (every agent would reject every leaf); one near its end is logged at start. */
export function checkExpiry(ca: LocalCa, now: Date, log: Logger): void {
  if (ca.notAfter.getTime() <= now.getTime()) {
    throw new CliError(`${ca.certPath}: keyswap's CA expired on ${ca.notAfter.toISOString()}; fix: ${ROTATE_FIX}`, EXIT.runtime);
  }
  const days = daysLeft(ca, now);
  if (days < CA_EXPIRY_WARNING_DAYS) log.warn({ ca: ca.certPath, expires: ca.notAfter.toISOString() }, `keyswap's CA expires in ${days} days; rotate it: ${ROTATE_FIX}`);
}
