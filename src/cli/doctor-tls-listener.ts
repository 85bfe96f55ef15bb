import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import type { Config } from '../config/index.js';
import type { Check } from './doctor-parent.js';

const SOON_MS = 14 * 86_400_000;

/**
 * `listen_tls`: do its certificate, key and trust bundle load together (what keyswap serve would do), and how long
 * does its certificate have. SPIFFE certificates live hours, so an expiry within 14 days only warns when nothing
 * rotates them: the check says when, and what rotates it.
 */
export async function tlsListenerChecks(config: Config): Promise<Check[]> {
  const t = config.listenTls;
  if (t === null) return [];
  const read = async (f: string): Promise<string | null> => readFile(f, 'utf8').catch(() => null);
  const [cert, key, ca] = await Promise.all([read(t.certFile), read(t.keyFile), read(t.clientCaFile)]);
  const missing = [[cert, 'cert_file', t.certFile], [key, 'key_file', t.keyFile], [ca, 'client_ca_file', t.clientCaFile]].filter(([v]) => v === null);
  if (missing.length > 0) return [{ ok: false, what: `listen_tls: cannot read ${missing.map(([, k, f]) => `${k} ${f}`).join(', ')}: keyswap serve does not start`, fix: 'point listen_tls at the files your SVID helper (spiffe-helper, cert-manager) writes' }];
  try {
    tls.createSecureContext({ cert: cert as string, key: key as string, ca: ca as string });
  } catch (err) {
    return [{ ok: false, what: `listen_tls: the certificate, key and bundle do not load together (${(err as Error).message})`, fix: 'check that key_file is the key of cert_file' }];
  }
  const validTo = Date.parse(new X509Certificate(cert as string).validTo);
  if (validTo <= Date.now()) return [{ ok: false, what: `listen_tls: the listener's certificate expired ${new Date(validTo).toISOString()}: agents refuse it`, fix: 'renew it (keyswap re-reads the files within a second)' }];
  const left = validTo - Date.now();
  return [{ ok: true, what: `listen_tls: certificate, key and bundle load; the certificate is valid until ${new Date(validTo).toISOString()}${left < SOON_MS ? ' (soon: keyswap re-reads the files when they are renewed)' : ''}` }];
}
