import http from 'node:http';
import type net from 'node:net';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { Config, HostPort } from '../config/index.js';
import { formatAuthority, isIpLiteral } from '../wire/index.js';
import { Dialer } from './dialer.js';
import type { SecretSource } from './snapshot.js';

export interface UpstreamTarget {
  readonly scheme: 'https' | 'http';
  /** The name the agent asked for: what TLS verifies, whatever address is dialled. */
  readonly host: string;
  readonly port: number;
  /** The client identity the request acts for ('' without `clients:`): each has its own connection pools. */
  readonly identity: string;
}

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, as sent upstream. */
  readonly path: string;
  readonly headers: readonly string[];
}

interface Pools { readonly https: https.Agent; readonly http: http.Agent }

/**
 * The one way out of keyswap: keep-alive pools per destination and per client identity, strict TLS always. A
 * pooled connection carries only one identity's requests, so no framing fault upstream can hand one agent's
 * secret or response to another. One client per config snapshot; close() drops its pooled sockets.
 */
export class UpstreamClient {
  readonly #pools = new Map<string, Pools>();
  readonly #secureContext: tls.SecureContext;
  readonly #resolve: ReadonlyMap<string, HostPort>;
  readonly #connectTimeoutMs: number;
  readonly #armConnectTimeout: (this: http.ClientRequest, socket: net.Socket) => void;
  readonly dialer: Dialer;

  /** `secrets`: where the parent proxy's credentials come from (none needed without `upstream.proxy_credentials`). */
  constructor(upstream: Config['upstream'], extraCaPem: string | null, secrets: SecretSource | null = null) {
    this.dialer = new Dialer(upstream, secrets);
    this.#resolve = upstream.resolve;
    this.#connectTimeoutMs = upstream.connectTimeoutMs;
    this.#armConnectTimeout = connectTimer(upstream.connectTimeoutMs);
    // One context built once: passing `ca` per request would also put the whole CA bundle into the agent's
    // pool key on every request.
    this.#secureContext = tls.createSecureContext({
      ca: extraCaPem === null ? [...tls.rootCertificates] : [...tls.rootCertificates, extraCaPem],
      minVersion: 'TLSv1.2',
    });
    this.#idleTimeoutMs = upstream.idleTimeoutMs;
  }

  readonly #idleTimeoutMs: number;

  #poolsFor(identity: string): Pools {
    let pools = this.#pools.get(identity);
    if (pools === undefined) {
      const agentOptions = { keepAlive: true, maxFreeSockets: 64, timeout: this.#idleTimeoutMs, scheduling: 'lifo' as const };
      const pool = <A extends http.Agent>(agent: A, secure: boolean): A => noDelay(this.dialer.hasParent ? parentAwareAgent(agent, this.dialer, this.#connectTimeoutMs, secure) : agent);
      pools = { https: pool(new https.Agent(agentOptions), true), http: pool(new http.Agent(agentOptions), false) };
      this.#pools.set(identity, pools);
    }
    return pools;
  }

  /** The address dialled for a destination: `upstream.resolve` changes only this, never the name verified (K2). */
  dialAddress(host: string, port: number): HostPort {
    return this.#resolve.get(`${host}:${port}`) ?? { host, port };
  }

  /**
   * Starts the request. The caller pipes the body in and handles 'response' and 'error'. A connection that is
   * not established within the connect timeout fails with code ETIMEDOUT.
   */
  request(target: UpstreamTarget, req: UpstreamRequest): http.ClientRequest {
    const dial = this.dialAddress(target.host, target.port);
    const pools = this.#poolsFor(target.identity);
    // Flat literals, no spreads: on this hot path every property after a spread cost about half a microsecond.
    // upstreamName travels with the options to the agent, which dials through the parent proxy unless no_proxy names it.
    let out: http.ClientRequest;
    if (target.scheme === 'https') {
      const verify = this.#verifierFor(target.host);
      out = https.request({
        host: dial.host, port: dial.port, method: req.method, path: req.path, headers: req.headers as string[], upstreamName: target.host, upstreamPort: target.port, agent: pools.https,
        secureContext: this.#secureContext, rejectUnauthorized: true, minVersion: 'TLSv1.2', servername: verify.servername, checkServerIdentity: verify.check,
      } as https.RequestOptions);
    } else {
      out = http.request({ host: dial.host, port: dial.port, method: req.method, path: req.path, headers: req.headers as string[], upstreamName: target.host, upstreamPort: target.port, agent: pools.http } as http.RequestOptions);
    }
    out.once('socket', this.#armConnectTimeout);
    // The agent's socket timeout only emits 'timeout'; an upstream that stops talking must end the request.
    out.once('timeout', endIdle);
    return out;
  }

  /** Per host, built once: the name TLS sends and the check of the certificate against the CONNECT host. */
  readonly #verifiers = new Map<string, { readonly servername: string | undefined; readonly check: (name: string, cert: tls.PeerCertificate) => Error | undefined }>();

  #verifierFor(host: string): { readonly servername: string | undefined; readonly check: (name: string, cert: tls.PeerCertificate) => Error | undefined } {
    let v = this.#verifiers.get(host);
    if (v === undefined) {
      // Bounded: CONNECT hosts come from agents; the entries are tiny and rebuilt at once.
      if (this.#verifiers.size >= 4096) this.#verifiers.clear();
      v = { servername: isIpLiteral(host) ? undefined : host, check: (_name, cert) => tls.checkServerIdentity(host, cert) };
      this.#verifiers.set(host, v);
    }
    return v;
  }

  /**
   * The TLS every upstream connection uses, pooled or not. servername is the CONNECT host, never the Host header
   * or the dialled address: verifying a name the client or the resolver chose is how a secret reaches the wrong
   * upstream (K2, K3). (https.RequestOptions does not declare secureContext; the agent hands it to tls.connect().)
   */
  #strictTls(host: string): tls.ConnectionOptions {
    const verify = this.#verifierFor(host);
    return { secureContext: this.#secureContext, rejectUnauthorized: true, minVersion: 'TLSv1.2', servername: verify.servername, checkServerIdentity: verify.check };
  }

  /**
   * One connection of its own to an upstream (a WebSocket, an HTTP/2 session), dialled as requests are (resolve,
   * parent proxy) and verified as strictly; resolves once TLS is up, offering `alpn`. Bounded by the connect
   * timeout, handshake included.
   */
  async connect(target: Omit<UpstreamTarget, 'identity'>, alpn: readonly string[] = []): Promise<net.Socket> {
    const socket = await this.dialer.tcp(target, this.dialAddress(target.host, target.port), this.#connectTimeoutMs);
    if (target.scheme === 'http') return socket;
    return new Promise<tls.TLSSocket>((resolve, reject) => {
      const secured = tls.connect({ ...this.#strictTls(target.host), socket, ALPNProtocols: [...alpn] });
      const timer = setTimeout(() => secured.destroy(Object.assign(new Error('upstream TLS handshake timeout'), { code: 'ETIMEDOUT' })), this.#connectTimeoutMs);
      secured.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(secured);
      });
      secured.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      });
    });
  }

  readonly #h2Sessions = new Map<string, Promise<http2.ClientHttp2Session | null>>();
  readonly #h1Only = new Map<string, number>();

  /**
   * An HTTP/2 session to this upstream for this client identity, shared by its streams; null when the upstream
   * did not offer h2 (then remembered for ten minutes, and HTTP/1.1 is used). Opening one sends no request.
   */
  h2Session(target: UpstreamTarget): Promise<http2.ClientHttp2Session | null> {
    const key = `${target.identity}\0${target.host}:${target.port}`;
    if ((this.#h1Only.get(key) ?? 0) > Date.now()) return Promise.resolve(null);
    const open = this.#h2Sessions.get(key);
    if (open !== undefined) return open;
    const opening = this.connect(target, ['h2', 'http/1.1']).then((socket) => {
      if ((socket as tls.TLSSocket).alpnProtocol !== 'h2') {
        socket.destroy();
        this.#h1Only.set(key, Date.now() + 600_000);
        this.#h2Sessions.delete(key);
        return null;
      }
      const session = http2.connect(`https://${formatAuthority(target.host, target.port, 'https')}`, { createConnection: () => socket, maxSessionMemory: 64 });
      const forget = (): void => { if (this.#h2Sessions.get(key) === opening) this.#h2Sessions.delete(key); };
      session.once('close', forget);
      session.once('goaway', forget);
      session.on('error', () => session.destroy());
      session.setTimeout(this.#idleTimeoutMs, () => session.close());
      return session;
    });
    this.#h2Sessions.set(key, opening);
    opening.catch(() => this.#h2Sessions.delete(key));
    return opening;
  }

  close(): void {
    for (const s of this.#h2Sessions.values()) s.then((session) => session?.close(), () => {});
    for (const pools of this.#pools.values()) {
      pools.https.destroy();
      pools.http.destroy();
    }
  }
}

type CreateConnection = (options: ConnectOptions, cb: (err: Error | null, socket?: net.Socket) => void) => net.Socket | undefined;
type ConnectOptions = tls.ConnectionOptions & { host: string; port: number; upstreamName?: string; upstreamPort?: number };

/**
 * An agent whose new connections go through the parent proxy (CONNECT, then TLS inside it for https) unless
 * `no_proxy` names the upstream. The TLS options are the request's own: the same strict verification, the same
 * servername, whatever carries the bytes.
 */
function parentAwareAgent<A extends http.Agent>(agent: A, dialer: Dialer, timeoutMs: number, secure: boolean): A {
  const own = agent as unknown as { createConnection: CreateConnection };
  const direct = own.createConnection.bind(agent);
  own.createConnection = (options, cb) => {
    const name = options.upstreamName ?? options.host;
    if (dialer.parentFor(name) === null) return direct(options, cb);
    dialer.tcp({ host: name, port: options.upstreamPort ?? options.port }, { host: options.host, port: options.port }, timeoutMs).then(
      (socket) => {
        if (!secure) return cb(null, socket);
        const secured = tls.connect({ ...options, socket });
        // Connected already, so the request's connect timer never arms: the handshake inside the tunnel is bounded here.
        const timer = setTimeout(() => secured.destroy(Object.assign(new Error('upstream TLS handshake timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
        secured.once('secureConnect', () => clearTimeout(timer));
        secured.once('close', () => clearTimeout(timer));
        cb(null, secured);
      },
      (err: Error) => cb(err),
    );
    return undefined;
  };
  return agent;
}

/**
 * Nagle off on every pooled connection, once, as it is made: a chunked body (gRPC, streaming clients, a body keyswap
 * substitutes into) leaves in several small writes, and with Nagle each waited for the upstream's delayed ACK,
 * 40 ms a request (bench/stall.mjs). An agent's `noDelay` option reaches no socket in Node 20: set it on the socket.
 */
function noDelay<A extends http.Agent>(agent: A): A {
  const own = agent as unknown as { createConnection: CreateConnection };
  const create = own.createConnection.bind(agent);
  own.createConnection = (options, cb) => {
    const socket = create(options, (err, made) => {
      made?.setNoDelay(true);
      cb(err, made);
    });
    socket?.setNoDelay(true);
    return socket;
  };
  return agent;
}

/** 'timeout' on an upstream request: the upstream stopped talking. */
function endIdle(this: http.ClientRequest): void {
  this.destroy(Object.assign(new Error('upstream idle timeout'), { code: 'ETIMEDOUT' }));
}

/** The 'socket' listener of every upstream request of one client (one function, not a closure per request). */
function connectTimer(ms: number): (this: http.ClientRequest, socket: net.Socket) => void {
  return function armConnectTimeout(socket) {
    // A pooled socket is already connected; only a fresh dial can hang.
    if (!socket.connecting) return;
    const timer = setTimeout(() => this.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT' })), ms);
    const connected = socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
    // Both listeners go once either fires: left on the pooled socket, they would keep this request (and through
    // its listeners, the agent's response) reachable for as long as the connection is pooled.
    const disarm = (): void => {
      clearTimeout(timer);
      socket.off(connected, disarm);
      socket.off('close', disarm);
    };
    socket.once(connected, disarm);
    socket.once('close', disarm);
  };
}
