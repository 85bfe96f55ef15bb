import { readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';

export interface TlsListenFiles {
  readonly host: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
}

export interface TlsListener {
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

/** How often the three files are looked at: SPIRE's helper and cert-manager's CSI driver rotate well within this. */
const WATCH_MS = 1_000;

/**
 * The TLS proxy listener (`listen_tls`): agents reach it with an `https://` proxy URL and may present a client
 * certificate. The handshake asks for one and verifies it against the trust bundle (chain and dates) without
 * refusing a connection that has none: an agent may still authenticate with a token, and a refusal is better said
 * in HTTP (407) than as a failed handshake. Each decrypted socket is handed to `onSocket` (the proxy's own HTTP
 * server). The certificate, key and bundle are re-read whenever one of them changes on disk; a set that does not
 * load keeps the previous one serving, and says why.
 */
export async function startTlsListener(files: TlsListenFiles, onSocket: (socket: tls.TLSSocket) => void, log: Logger): Promise<TlsListener> {
  const server = tls.createServer({ ...readContext(files), requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' });
  server.on('secureConnection', onSocket);
  // A handshake that fails (a client that speaks plain HTTP, a bad record) ends that connection only.
  server.on('tlsClientError', () => {});
  let stamp = stampOf(files);
  const timer = setInterval(() => {
    const now = stampOf(files);
    if (now === stamp) return;
    try {
      server.setSecureContext(readContext(files));
      stamp = now;
      log.info({ cert: files.certFile, client_ca: files.clientCaFile }, 'TLS listener certificates reloaded');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'TLS listener certificates changed but do not load; the previous ones stay in use');
      stamp = now;
    }
  }, WATCH_MS);
  timer.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(files.port, files.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      server.close(() => resolve());
    }),
  };
}

function readContext(files: TlsListenFiles): tls.SecureContextOptions {
  const read = (f: string, what: string): string => {
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      throw new Error(`listen_tls.${what}: cannot read ${f} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const options = { cert: read(files.certFile, 'cert_file'), key: read(files.keyFile, 'key_file'), ca: read(files.clientCaFile, 'client_ca_file') };
  // Fails here, not at the next handshake, when the key does not match the certificate or a file is not PEM.
  tls.createSecureContext(options);
  return options;
}

function stampOf(files: TlsListenFiles): string {
  return [files.certFile, files.keyFile, files.clientCaFile].map((f) => {
    try {
      const s = statSync(f);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return 'absent';
    }
  }).join('|');
}
