import { constants, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { looseWriteAccess } from '../config/index.js';
import type { Logger } from '../log.js';
import { chainTrusted, recordPeer, trustDomainOf } from './peer-identity.js';

export interface TlsListenFiles {
  readonly host: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
  /** A TLS handshake must complete within this (timeouts.tls_handshake_seconds). */
  readonly handshakeMs: number;
}

export interface TlsListener {
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

/** How often the three files are looked at: SPIRE's helper and cert-manager's CSI driver rotate well within this. */
const WATCH_MS = 1_000;

interface Loaded { readonly context: tls.SecureContextOptions; readonly anchors: readonly X509Certificate[]; readonly stamp: string }

/**
 * The TLS proxy listener (`listen_tls`): agents reach it with an `https://` proxy URL and may present a client
 * certificate. The handshake asks for one and verifies it against the trust bundle (chain and dates) without
 * refusing a connection that has none: an agent may still authenticate with a token, and a refusal is better said
 * in HTTP (407) than as a failed handshake. Who the certificate says the agent is, is read once, when the handshake
 * completes; renegotiation is off, so no later handshake can swap the certificate under that reading. Each socket
 * is then handed to `onSocket` (the proxy's own HTTP server). The certificate, key and bundle are re-read when one
 * changes on disk; connections whose certificate the new bundle no longer anchors are closed; a set that does not
 * load keeps the previous one serving, and says why.
 */
export async function startTlsListener(files: TlsListenFiles, onSocket: (socket: tls.TLSSocket) => void, log: Logger): Promise<TlsListener> {
  let loaded = await load(files);
  const server = tls.createServer({
    ...loaded.context,
    // Nagle off, as Node's HTTP server sets it on the plain listener: a response's head and body are separate writes.
    noDelay: true,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
    minVersion: 'TLSv1.2',
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    handshakeTimeout: files.handshakeMs,
  });
  const identified = new Set<tls.TLSSocket>();
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.disableRenegotiation();
    if (recordPeer(socket, loaded.anchors) !== null) {
      identified.add(socket);
      socket.once('close', () => identified.delete(socket));
    }
    onSocket(socket);
  });
  // A handshake that fails (a client that speaks plain HTTP, a bad record) ends that connection only.
  server.on('tlsClientError', () => {});
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    void (async () => {
      const now = await stampOf(files);
      if (now === loaded.stamp) return;
      try {
        const next = await load(files);
        server.setSecureContext(next.context);
        loaded = next;
        let closed = 0;
        for (const socket of identified) {
          if (chainTrusted(socket, next.anchors)) continue;
          identified.delete(socket);
          socket.destroy();
          closed++;
        }
        log.info({ cert: files.certFile, client_ca: files.clientCaFile, closed }, 'TLS listener certificates reloaded');
        if (closed > 0) log.warn({ closed }, 'connections whose certificate the new trust bundle no longer anchors were closed');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS listener certificates changed but do not load; the previous ones stay in use');
        loaded = { ...loaded, stamp: now };
      }
    })().finally(() => { checking = false; });
  }, WATCH_MS);
  timer.unref();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(files.port, files.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(timer);
    throw err;
  }
  const a = server.address() as AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      for (const socket of identified) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * The three files, checked as a set: nobody but keyswap's user and root may change them, the key is readable by its
 * owner only, a bundle of several trust domains names each CA's, and the key is the certificate's. Errors name the setting and the file.
 */
async function load(files: TlsListenFiles): Promise<Loaded> {
  const stamp = await stampOf(files);
  const read = async (f: string, what: string): Promise<string> => {
    const loose = await looseWriteAccess(f);
    if (loose !== null) throw new Error(`listen_tls.${what}: ${f} is ${loose.finding}; ${loose.fix}`);
    try {
      return await readFile(f, 'utf8');
    } catch (err) {
      throw new Error(`listen_tls.${what}: cannot read ${f} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const [cert, key, ca] = [await read(files.certFile, 'cert_file'), await read(files.keyFile, 'key_file'), await read(files.clientCaFile, 'client_ca_file')];
  if (((await stat(files.keyFile)).mode & 0o077) !== 0) throw new Error(`listen_tls.key_file: ${files.keyFile} is readable by group or others; run: chmod 600 ${files.keyFile}`);
  const anchors = (ca.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
  if (anchors.length === 0) throw new Error(`listen_tls.client_ca_file: ${files.clientCaFile} holds no certificate`);
  // A federated bundle works because each chain must end at an anchor of its ID's own domain; an anchor that names
  // no domain could vouch for any of them, so among several domains every anchor must name its own.
  const domains = [...new Set(anchors.map((a) => trustDomainOf(a)).filter((d): d is string => d !== null))];
  if (domains.length > 1 && anchors.some((a) => trustDomainOf(a) === null)) throw new Error(`listen_tls.client_ca_file: ${files.clientCaFile} holds CAs of several trust domains (${domains.join(', ')}) and a CA that names none (no spiffe://TRUST-DOMAIN URI SAN), which could vouch for any of them; label each CA, or give keyswap one trust domain's bundle`);
  const context = { cert, key, ca };
  // Fails here, not at the next handshake, when the key does not match the certificate or a file is not PEM.
  tls.createSecureContext(context);
  return { context, anchors, stamp };
}

async function stampOf(files: TlsListenFiles): Promise<string> {
  const parts = await Promise.all([files.certFile, files.keyFile, files.clientCaFile].map(async (f) => {
    const s = await stat(f).catch(() => null);
    return s === null ? 'absent' : `${s.mtimeMs}:${s.size}:${s.ino}`;
  }));
  return parts.join('|');
}
