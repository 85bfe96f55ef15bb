import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { isBoundDestination, parseAuthority } from '../policy/index.js';
import { destinationOf } from './audit-facts.js';
import type { AuditEvent } from '../audit/index.js';
import { authenticate } from './client-auth.js';
import { routeConnect } from './connect-router.js';
import { terminateTls, type ConnState, type LeafSource } from './mitm.js';
import { errorSummary, handleRequest, refuse, type ConnFacts, type PipelineDeps } from './pipeline.js';
import { Refusal, rawRefusal } from './refusal.js';
import type { Snapshot } from './snapshot.js';
import { openTunnel } from './tunnel.js';

export interface ProxyDeps {
  readonly host: string;
  readonly port: number;
  readonly snapshot: () => Snapshot;
  readonly leaves: LeafSource;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface RunningProxy {
  readonly address: { readonly host: string; readonly port: number };
  /** Agent connections open now: plain, tunnelled and decrypted alike (each is one outer socket). */
  readonly openConnections: number;
  /** Stops accepting, lets in-flight requests finish (up to drainMs), then closes every connection. */
  close(drainMs?: number): Promise<void>;
}

// The limits, stated here because they are part of keyswap's contract: 16 KiB of headers (431 past it), 30 s to
// receive them, no whole-request deadline (uploads and streams can be long), 65 s idle keep-alive. Node's 5 s
// default would make an agent that thinks for ten seconds between calls pay a new CONNECT and TLS handshake on
// each (30-40 ms here); 65 s outlasts the idle pools of Python's urllib3, Go and curl, and an idle connection
// costs tens of KB (bench/: idle connections).
const SERVER_OPTIONS: http.ServerOptions = {
  maxHeaderSize: 16 * 1024,
  headersTimeout: 30_000,
  requestTimeout: 0,
  keepAliveTimeout: 65_000,
  requireHostHeader: true,
};

/** Starts the listener; resolves once it is accepting connections on the bound address. */
export async function startProxy(deps: ProxyDeps): Promise<RunningProxy> {
  const now = deps.now ?? (() => performance.now());
  const pipelineDeps: PipelineDeps = { snapshot: deps.snapshot, log: deps.log, now };
  const states = new WeakMap<object, ConnState>();
  const tunnels = new Set<Duplex>();
  let inFlight = 0;
  let drained: (() => void) | null = null;

  const track = (res: http.ServerResponse): void => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
  };

  // The inner server only ever sees decrypted sockets handed over by terminateTls().
  const inner = http.createServer(SERVER_OPTIONS, (req, res) => {
    track(res);
    const socket = req.socket;
    const state = states.get(socket);
    if (state === undefined || !(socket instanceof TLSSocket)) {
      res.destroy();
      return;
    }
    const sni = typeof socket.servername === 'string' ? socket.servername : null;
    const conn: ConnFacts = { scheme: 'https', connectHost: state.connectHost, connectPort: state.connectPort, sni, client: state.client };
    handleRequest(req, res, conn, req.url ?? '', pipelineDeps).catch((err: unknown) => lastResort(err, res, deps.log));
  });

  // The outer server: CONNECT for HTTPS, absolute-form requests for plain HTTP.
  const outer = http.createServer(SERVER_OPTIONS, (req, res) => {
    track(res);
    const snap = deps.snapshot();
    const context = (host: string, port: number, path: string, client: string | null) => ({ id: randomUUID(), client, method: req.method ?? '', destination: destinationOf(host, port, path), snap });
    if (req.url?.startsWith(ROUTE_PREFIX)) {
      routeRequest(req, res, snap, pipelineDeps, context);
      return;
    }
    const target = plainTarget(req.url ?? '');
    if (target === null) {
      refuse(res, new Refusal('not_a_proxy_request'), context('-', 0, '/', null), deps.log);
      return;
    }
    if (target.connectHost === HEALTH_HOST) {
      answerHealth(req, res, snap, target.path);
      return;
    }
    const auth = authenticate(req.headers['proxy-authorization'], snap.config.clients, Date.now());
    if (!auth.ok) {
      res.setHeader('proxy-authenticate', 'Basic realm="keyswap"');
      refuse(res, new Refusal('proxy_auth_required'), context(target.connectHost, target.connectPort, target.path, null), deps.log);
      return;
    }
    const conn: ConnFacts = { ...target, client: auth.client };
    if (snap.policy.unmatchedDestinationPolicy === 'deny' && !isBoundDestination(snap.policy, conn.connectHost, conn.connectPort, 'http')) {
      refuse(res, new Refusal('unbound_destination'), context(conn.connectHost, conn.connectPort, target.path, auth.client?.name ?? null), deps.log);
      return;
    }
    handleRequest(req, res, conn, target.path, pipelineDeps).catch((err: unknown) => lastResort(err, res, deps.log));
  });

  outer.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const snap = deps.snapshot();
    const route = routeConnect(req.url, snap);
    socket.on('error', () => socket.destroy());
    const audit = (event: AuditEvent): void => {
      snap.audit.append(event).catch((e: unknown) => deps.log.error({ err: errorSummary(e) }, 'audit append failed'));
    };
    if (route.kind === 'bad_target') {
      socket.end(rawRefusal('bad_request'));
      return;
    }
    const destination = destinationOf(route.host, route.port, '/');
    // Every use of the proxy is authenticated when `clients:` is configured, tunnels included.
    const auth = authenticate(req.headers['proxy-authorization'], snap.config.clients, Date.now());
    if (!auth.ok) {
      audit({ type: 'deny', request_id: randomUUID(), method: 'CONNECT', destination, client: null, decision: 'denied', reason: 'proxy_auth_required', status: 407 });
      socket.end(rawRefusal('proxy_auth_required'));
      return;
    }
    const client = auth.client?.name ?? null;
    switch (route.kind) {
      case 'deny':
        audit({ type: 'deny', request_id: randomUUID(), method: 'CONNECT', destination, client, decision: 'denied', reason: 'unbound_destination', status: 403 });
        socket.end(rawRefusal('unbound_destination'));
        return;
      case 'tunnel':
        snap.audit.appendLazy({ type: 'tls_passthrough', request_id: randomUUID(), destination, client }).catch((e: unknown) => deps.log.error({ err: errorSummary(e) }, 'audit append failed'));
        tunnels.add(socket);
        openTunnel(socket, head, snap.upstream.dialAddress(route.host, route.port), snap.config.upstream.connectTimeoutMs, () => tunnels.delete(socket));
        return;
      case 'mitm':
        terminateTls(socket, head, { connectHost: route.host, connectPort: route.port, client: auth.client }, deps.leaves, inner, states).catch((err: unknown) => {
          deps.log.error({ err: errorSummary(err), host: route.host }, 'TLS termination failed');
          if (socket.writable) socket.end(rawRefusal('internal'));
        });
        return;
    }
  });

  // Malformed requests (bad framing, CL+TE, oversized headers) get a short answer and a closed socket; the
  // process carries on (K9). No request exists yet, so there is nothing to audit.
  const onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    deps.log.info({ code: err.code }, 'malformed request from agent');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      const body = 'keyswap: request headers too large\n';
      socket.end(`HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    socket.end(rawRefusal('bad_request'));
  };
  let open = 0;
  outer.on('connection', (socket: Duplex) => {
    open++;
    socket.once('close', () => { open--; });
  });
  outer.on('clientError', onClientError);
  inner.on('clientError', onClientError);
  for (const server of [outer, inner]) {
    server.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => socket.end(rawRefusal('upgrade_unsupported')));
  }

  await new Promise<void>((resolve, reject) => {
    outer.once('error', reject);
    outer.listen(deps.port, deps.host, () => {
      outer.off('error', reject);
      resolve();
    });
  });
  const bound = outer.address() as AddressInfo;
  deps.log.info({ host: bound.address, port: bound.port }, 'listening');

  let closing: Promise<void> | null = null;
  return {
    address: { host: bound.address, port: bound.port },
    get openConnections(): number { return open; },
    close(drainMs = 10_000): Promise<void> {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => outer.close(() => resolve()));
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
        for (const t of tunnels) t.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}

const ROUTE_PREFIX = '/p/';
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '::1']);

type ContextOf = (host: string, port: number, path: string, client: string | null) => Parameters<typeof refuse>[2];

/**
 * Base-URL mode: `/p/<route>/rest` goes to the route's https origin as `/rest`, through the same pipeline as
 * proxied requests. Only a loopback Host is accepted (a DNS-rebinding page names its own host), and nothing a
 * browser marks as coming from a web page (Origin, Sec-Fetch-Site): an agent's SDK sends neither.
 */
function routeRequest(req: http.IncomingMessage, res: http.ServerResponse, snap: Snapshot, deps: PipelineDeps, context: ContextOf): void {
  const url = req.url ?? '';
  const end = url.indexOf('/', ROUTE_PREFIX.length);
  const name = end < 0 ? url.slice(ROUTE_PREFIX.length).split('?')[0] ?? '' : url.slice(ROUTE_PREFIX.length, end);
  const path = end < 0 ? `/${url.slice(ROUTE_PREFIX.length + name.length)}` : url.slice(end);
  const route = snap.config.routes.get(name);
  if (route === undefined) {
    refuse(res, new Refusal('unknown_route'), context('-', 0, '/', null), deps.log);
    return;
  }
  if (req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined) {
    refuse(res, new Refusal('browser_request'), context(route.host, route.port, path, null), deps.log);
    return;
  }
  const hostName = parseAuthority(req.headers.host ?? '')?.host;
  if (hostName === undefined || !LOOPBACK_NAMES.has(hostName)) {
    refuse(res, new Refusal('route_host_not_loopback'), context(route.host, route.port, path, null), deps.log);
    return;
  }
  const auth = authenticate(req.headers['proxy-authorization'], snap.config.clients, Date.now());
  if (!auth.ok) {
    refuse(res, new Refusal('proxy_auth_required'), context(route.host, route.port, path, null), deps.log);
    return;
  }
  const conn: ConnFacts = {
    scheme: 'https', connectHost: route.host, connectPort: route.port, sni: route.host, client: auth.client,
    routeAuthority: route.port === 443 ? route.host : `${route.host}:${route.port}`,
  };
  handleRequest(req, res, conn, path, deps).catch((err: unknown) => lastResort(err, res, deps.log));
}

interface PlainTarget extends Omit<ConnFacts, 'client'> { readonly path: string }

/** An absolute-form `http://host[:port]/path?query` request line, or null. */
function plainTarget(url: string): PlainTarget | null {
  if (!url.startsWith('http://')) return null;
  const rest = url.slice('http://'.length);
  const slash = rest.search(/[/?]/);
  const authorityText = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '/' : rest[slash] === '?' ? `/${rest.slice(slash)}` : rest.slice(slash);
  if (authorityText.includes('@')) return null;
  const authority = parseAuthority(authorityText);
  if (authority === null) return null;
  return { scheme: 'http', connectHost: authority.host, connectPort: authority.port ?? 80, sni: null, path };
}

/** handleRequest answers every failure itself; reaching here is a bug, and the agent's connection is cut. */
function lastResort(err: unknown, res: http.ServerResponse, log: Logger): void {
  log.error({ err: errorSummary(err) }, 'unhandled failure in the request pipeline');
  res.destroy();
}

/** `.invalid` never resolves (RFC 2606), so this name can only ever mean keyswap itself. */
const HEALTH_HOST = 'keyswap.invalid';

/**
 * `GET http://keyswap.invalid/healthz` through the proxy: 200 while keyswap can serve injected requests, 503 once
 * the audit log has failed (every injected request is then refused). No secret, name or path in the answer.
 */
function answerHealth(req: http.IncomingMessage, res: http.ServerResponse, snap: Snapshot, path: string): void {
  if (path !== '/healthz' || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain', connection: 'close' });
    res.end('keyswap: the only local endpoint is GET http://keyswap.invalid/healthz\n');
    return;
  }
  const healthy = snap.audit.isHealthy;
  res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ status: healthy ? 'ok' : 'audit_unavailable' }));
}
