import http from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import type { ClientSpec } from '../config/index.js';
import { handleTransparent, handleTransparentHttp } from './transparent-entry.js';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { isLocalHost } from '../wire/index.js';
import { handleAbsolute, parseAbsoluteUrl } from './absolute-entry.js';
import { handleConnect } from './connect-entry.js';
import { handleDecrypted, handleDecryptedUpgrade } from './decrypted-entry.js';
import { refuseUnrouted, type ConnState, type ProxyContext } from './entries.js';
import { isRefusalOwed } from './exchange.js';
import { handleH2, h2Options } from './h2-entry.js';
import { answerHealth, HEALTH_HOST, type IdentityProver } from './health-entry.js';
import { ACCESS_PATH, handleAccessRequest } from './access-entry.js';
import { LiveClients } from './live-clients.js';
import type { LeafSource } from './mitm.js';
import { rawRefusal } from './refusal.js';
import { startTlsListener, type TlsListener, type TlsListenFiles } from './tls-listener.js';
import { handleRoute, ROUTE_PREFIX } from './route-entry.js';
import type { Snapshot } from './snapshot.js';

export interface ProxyDeps {
  readonly host: string;
  readonly port: number;
  readonly snapshot: () => Snapshot;
  readonly leaves: LeafSource;
  readonly log: Logger;
  readonly now?: () => number;
  /** Proves this is the keyswap the agent's launcher expects (`/identity`). */
  readonly identity: IdentityProver;
  /** A listening socket handed over by systemd (socket activation): used instead of host and port. */
  readonly fd?: number;
  /** `listen_tls`: the TLS proxy listener, whose agents may be identified by their certificates. */
  readonly tls?: TlsListenFiles;
  /**
   * `transparent`: where the egress lock redirects agents with no proxy settings, and who they are (the configured
   * client, looked up in the configuration in force; not ok when it names one no longer admitted).
   */
  readonly transparent?: { readonly host: string; readonly port: number; readonly httpPort: number | null; readonly uid: number; readonly client: () => { readonly ok: boolean; readonly client: ClientSpec | null } };
}

export interface RunningProxy {
  readonly address: { readonly host: string; readonly port: number };
  /** The TLS listener's, when `listen_tls` is set. */
  readonly tlsAddress: { readonly host: string; readonly port: number } | null;
  /** The transparent listener's, when `transparent` is set. */
  readonly transparentAddress: { readonly host: string; readonly port: number } | null;
  /** Agent connections open now: plain, tunnelled and decrypted alike (each is one outer socket). */
  readonly openConnections: number;
  /**
   * The configuration changed (a reload, the control API): whatever a client it no longer admits holds open is
   * closed now, and audited. Clients' expiries are watched without it.
   */
  configChanged(): void;
  /** Stops accepting, lets in-flight requests finish (up to drainMs), then closes every connection. */
  close(drainMs?: number): Promise<void>;
}

/**
 * The limits, stated here because they are part of keyswap's contract: 16 KiB of headers (431 past it), a
 * request head within `timeouts.request_head_seconds` (30 s) of its first byte, no whole-request deadline
 * (uploads and streams can be long), `timeouts.keep_alive_seconds` (65 s) idle between requests. Node's 5 s
 * keep-alive default would make an agent that thinks for ten seconds between calls pay a new CONNECT and TLS
 * handshake on each (30-40 ms here); 65 s outlasts the idle pools of Python's urllib3, Go and curl. The check
 * runs every second so a slow head is cut close to its deadline, not up to 30 s after it.
 */
function serverOptions(snap: Snapshot): http.ServerOptions {
  return {
    maxHeaderSize: 16 * 1024,
    headersTimeout: snap.config.timeouts.requestHeadMs,
    requestTimeout: 0,
    keepAliveTimeout: snap.config.timeouts.keepAliveMs,
    connectionsCheckingInterval: 1_000,
    requireHostHeader: true,
  };
}

/**
 * Pipelined requests parsed ahead of their turn, per connection. Every one is held whole (its request, response and
 * exchange) until the ones before it are answered: 100,000 small ones on one connection took keyswap to 889 MB.
 * Past this many keyswap stops reading the socket (Node still parses the chunk it has, a TLS record or one read),
 * and the kernel's buffers push back on the agent; it reads again once half have been answered.
 */
const MAX_QUEUED = 16;

/**
 * Node's HTTP server reads a socket through its parser, straight from the socket's handle, so pausing the stream
 * alone reads on. Reading stops at the handle (a TLS socket's stops the connection under it); what is already in
 * hand (a TLS record's cleartext) is still parsed. Only then is `_paused` set, the flag of Node's own flood guard,
 * which every `req.resume()` checks before it restarts the socket: set during the parse, it would make Node pause
 * the parser with cleartext still to come, and that fails the connection (HPE_PAUSED, measured on TLS). Each side
 * resumes only its own pause: Node's on drain, keyswap's once half the queue is answered.
 */
type ServerSocket = Duplex & { _paused?: boolean; parser?: { resume(): void } | null; _handle?: { readStop(): number; readStart(): number } | null };
const pausedHere = new WeakSet<Duplex>();

function pauseReading(socket: ServerSocket): void {
  socket._handle?.readStop();
  if (pausedHere.has(socket) || socket._paused === true) return;
  pausedHere.add(socket);
  setImmediate(() => {
    if (pausedHere.has(socket)) socket._paused = true;
  });
}

function resumeReading(socket: ServerSocket): void {
  if (!pausedHere.has(socket) || socket.destroyed) return;
  // An agent that is not reading its answers keeps the socket paused (Node's guard; its drain handler resumes):
  // reading on would pile answers up in keyswap's memory instead.
  if (socket.writableNeedDrain) return;
  pausedHere.delete(socket);
  socket._paused = false;
  socket.parser?.resume();
  socket.resume();
  socket._handle?.readStart();
}

/**
 * Starts the listener; resolves once it is accepting connections on the bound address. It only accepts and
 * dispatches: each entry mode (CONNECT, decrypted request, absolute-form http, base-URL route, health) is a
 * module of its own that builds one Exchange.
 */
export async function startProxy(deps: ProxyDeps): Promise<RunningProxy> {
  const first = deps.snapshot();
  const inner = http.createServer(serverOptions(first));
  const inner2 = http2.createServer(h2Options());
  const outer = http.createServer(serverOptions(first));
  let self: AddressInfo | null = null;
  let tlsListener: TlsListener | null = null;
  // The transparent listeners: TLS (redirected 443) and plain HTTP (redirected 80), each on 127.0.0.1 and, where
  // the host has IPv6, on ::1, where the egress lock redirects IPv6.
  const transparents: net.Server[] = [];
  let transparent: net.Server | null = null;
  const live = new LiveClients(deps.snapshot);
  const ctx: ProxyContext = {
    deps: {
      snapshot: deps.snapshot,
      log: deps.log,
      now: deps.now ?? (() => performance.now()),
      isSelf: (host, port) => self !== null && (port === self.port || port === tlsListener?.address.port || transparents.some((t) => (t.address() as AddressInfo | null)?.port === port)) && (isLocalHost(host) || host === self.address || host === tlsListener?.address.host),
      pipelines: new WeakMap(),
      live,
    },
    leaves: deps.leaves,
    inner,
    inner2,
    h2States: new WeakMap(),
    h2Sessions: new Set(),
    states: new WeakMap<TLSSocket, ConnState>(),
    plain: new WeakMap(),
    tunnels: new Set<Duplex>(),
  };

  let inFlight = 0;
  let drained: (() => void) | null = null;
  // The last response still to be written on each agent socket, so a parse error in a pipelined request behind it waits for it.
  const answering = new WeakMap<Duplex, http.ServerResponse>();
  // Requests parsed and not yet answered, per agent socket: past MAX_QUEUED keyswap stops reading the socket.
  const queued = new WeakMap<Duplex, number>();
  const track = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    inFlight++;
    // req.socket, not res.socket: a pipelined response is queued, and gets its socket only when its turn comes.
    const socket = req.socket;
    answering.set(socket, res);
    const waiting = (queued.get(socket) ?? 0) + 1;
    queued.set(socket, waiting);
    if (waiting > MAX_QUEUED) pauseReading(socket);
    res.once('close', () => {
      inFlight--;
      if (answering.get(socket) === res) answering.delete(socket);
      const left = (queued.get(socket) ?? 1) - 1;
      queued.set(socket, left);
      if (left <= MAX_QUEUED / 2) resumeReading(socket);
      if (inFlight === 0) drained?.();
    });
  };

  inner.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    track(req, res);
    handleDecrypted(ctx, req, res);
  });
  inner2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    handleH2(ctx, req, res);
  });
  // A session-level failure (a flood, a protocol error) ends that session only.
  inner2.on('sessionError', () => {});
  outer.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    track(req, res);
    const url = req.url ?? '';
    if (url.startsWith(ROUTE_PREFIX)) return handleRoute(ctx, req, res);
    const absolute = parseAbsoluteUrl(url);
    if (absolute === null) return refuseUnrouted(ctx, req, { kind: 'response', res }, 'not_a_proxy_request');
    if (absolute.host === HEALTH_HOST) {
      if (absolute.path.startsWith(ACCESS_PATH)) return handleAccessRequest(ctx, req, res, absolute.path);
      return answerHealth(req, res, deps.snapshot(), absolute.path, deps.identity);
    }
    return handleAbsolute(ctx, req, res, absolute);
  });
  // Answers leave a connection in the order its requests came. Whatever ends or takes over the connection (a
  // parse error's refusal, a CONNECT or Upgrade pipelined behind requests still being answered) waits for those
  // answers; written at once, it would reach the agent as the answer to an earlier request, one response off.
  const afterAnswers = (socket: Duplex, act: () => void): void => {
    const pending = answering.get(socket);
    if (pending === undefined || pending.writableFinished) {
      act();
      return;
    }
    pending.once('finish', act);
    pending.once('close', () => { if (!pending.writableFinished) socket.destroy(); });
  };
  // A CONNECT behind pending answers cannot take the connection over safely: it is refused after them.
  outer.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const pending = answering.get(socket);
    if (pending !== undefined && !pending.writableFinished) afterAnswers(socket, () => socket.end(rawRefusal('bad_request')));
    else handleConnect(ctx, req, socket, head);
  });

  // Malformed requests (bad framing, CL+TE, oversized headers, a head too slow) get a short answer from the table
  // and a closed socket; the process carries on (K9). No request exists yet, so there is nothing to audit.
  const onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    deps.log.info({ code: err.code }, 'malformed request from agent');
    const refusal = rawRefusal(err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request');
    // A request still arriving when the error came is the broken one: nothing waits for its answer, which is the
    // refusal itself, or a cut connection once its own answer has begun.
    const pending = answering.get(socket);
    if (!socket.writable || pending?.headersSent === true && !pending.req.complete) socket.destroy();
    // Its refusal is decided and waits for its record: that is its answer (the one the audit log names), and it
    // closes the connection. The listener's own 400 here would go out unrecorded, in its place.
    else if (pending !== undefined && !pending.req.complete && isRefusalOwed(pending)) afterAnswers(socket, () => socket.end());
    else if (pending !== undefined && !pending.req.complete) socket.end(refusal);
    else afterAnswers(socket, () => socket.end(refusal));
  };
  let open = 0;
  outer.on('connection', (socket: Duplex) => {
    open++;
    socket.once('close', () => { open--; });
  });
  outer.on('clientError', onClientError);
  inner.on('clientError', onClientError);
  // WebSockets are decrypted connections' only upgrade; on the outer listener (plain ws://, routes) none is served.
  outer.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => afterAnswers(socket, () => socket.end(rawRefusal('upgrade_unsupported'))));
  inner.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.pause();
    afterAnswers(socket, () => handleDecryptedUpgrade(ctx, req, socket, head));
  });

  await new Promise<void>((resolve, reject) => {
    outer.once('error', reject);
    const onListening = (): void => {
      outer.off('error', reject);
      resolve();
    };
    // Socket activation: systemd holds the port while keyswap restarts, so nothing else can take it meanwhile.
    if (deps.fd === undefined) outer.listen(deps.port, deps.host, onListening);
    else outer.listen({ fd: deps.fd }, onListening);
  });
  self = outer.address() as AddressInfo;
  // The TLS listener's decrypted sockets are parsed by the same server as plain ones: one parser, one set of rules.
  if (deps.tls !== undefined) {
    try {
      tlsListener = await startTlsListener(deps.tls, (socket) => outer.emit('connection', socket), deps.log);
    } catch (err) {
      outer.close();
      throw err;
    }
  }
  if (deps.transparent !== undefined) {
    const t = deps.transparent;
    const listen = async (port: number, host: string, handle: (socket: net.Socket) => void, optional: boolean): Promise<net.Server | null> => {
      // Nagle off, as Node's HTTP server sets it on the plain listener: a response's head and body are separate writes.
      const server = net.createServer({ noDelay: true }, handle);
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, host, () => resolve());
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (optional && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
          deps.log.info({ host, port }, 'no IPv6 loopback here: the egress lock rejects a locked user\'s IPv6 instead of redirecting it');
          return null;
        }
        throw err;
      }
      transparents.push(server);
      return server;
    };
    try {
      const tls = (socket: net.Socket): void => handleTransparent(ctx, socket, t.uid, t.client);
      transparent = await listen(t.port, t.host, tls, false);
      await listen(t.port, '::1', tls, true);
      if (t.httpPort !== null) {
        const plain = (socket: net.Socket): void => handleTransparentHttp(ctx, socket, t.uid, t.client);
        await listen(t.httpPort, t.host, plain, false);
        await listen(t.httpPort, '::1', plain, true);
      }
    } catch (err) {
      for (const server of transparents) server.close();
      outer.close();
      await tlsListener?.close();
      throw err;
    }
  }
  const transparentAt = transparent === null ? null : (transparent.address() as AddressInfo);
  // The inner server never listens: it is handed decrypted sockets. 'listening' is what starts Node's tracking
  // of its connections, without which its head and request timers never run and a connection that sends
  // nothing after its handshake lives forever (test: security/lifetimes).
  inner.emit('listening');
  deps.log.info({ host: self.address, port: self.port }, 'listening');

  let closing: Promise<void> | null = null;
  return {
    address: { host: self.address, port: self.port },
    tlsAddress: tlsListener?.address ?? null,
    transparentAddress: transparentAt === null ? null : { host: transparentAt.address, port: transparentAt.port },
    get openConnections(): number { return open; },
    configChanged: () => live.sweep(),
    close(drainMs = 10_000): Promise<void> {
      closing ??= (async () => {
        live.stop();
        const stopped = new Promise<void>((resolve) => outer.close(() => resolve()));
        const tlsStopped = tlsListener?.close();
        for (const server of transparents) server.close();
        inner.close();
        inner2.close();
        // GOAWAY: agents open no new stream here, and finish the ones in flight.
        for (const s of ctx.h2Sessions) s.close();
        outer.closeIdleConnections();
        inner.closeIdleConnections();
        if (inFlight > 0) {
          await Promise.race([
            new Promise<void>((resolve) => { drained = resolve; }),
            new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref()),
          ]);
        }
        outer.closeAllConnections();
        inner.closeAllConnections();
        for (const s of ctx.h2Sessions) s.destroy();
        for (const t of ctx.tunnels) t.destroy();
        await stopped;
        await tlsStopped;
      })();
      return closing;
    },
  };
}
