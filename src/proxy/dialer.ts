import http from 'node:http';
import net from 'node:net';
import type { Config, HostPort, NoProxyRule, ParentProxy } from '../config/index.js';
import type { SecretSource } from './snapshot.js';

/** The parent proxy answered the CONNECT with something other than 2xx, or broke off. `status` 0: no answer. */
export class ParentProxyError extends Error {
  override readonly name = 'ParentProxyError';
  readonly code = 'EPARENTPROXY';
  constructor(readonly status: number, options?: ErrorOptions) {
    super(status === 0 ? 'parent proxy connection failed' : `parent proxy answered CONNECT with ${status}`, options);
  }
}

/**
 * How keyswap reaches an upstream address: directly, or through `upstream.proxy` with CONNECT. Every way out uses
 * it: MITM'd requests, opaque tunnels, WebSockets, token endpoints. It only makes TCP; TLS to the real upstream
 * (strict, verified against the name the agent asked for) is the caller's and runs inside the parent's tunnel,
 * so the parent sees a host and port, never a byte of the request.
 */
export class Dialer {
  readonly #parent: ParentProxy | null;
  readonly #noProxy: readonly NoProxyRule[];
  readonly #secrets: SecretSource | null;
  readonly #blocks: net.BlockList;

  constructor(upstream: Config['upstream'], secrets: SecretSource | null) {
    this.#parent = upstream.parent;
    this.#noProxy = upstream.noProxy;
    this.#secrets = secrets;
    this.#blocks = new net.BlockList();
    for (const rule of this.#noProxy) {
      if (rule.kind === 'cidr') this.#blocks.addSubnet(rule.address, rule.bits, rule.family);
      if (rule.kind === 'ip') this.#blocks.addAddress(rule.address, net.isIP(rule.address) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  get hasParent(): boolean { return this.#parent !== null; }

  /** The parent this name is dialled through, or null (none configured, or `no_proxy` names it). */
  parentFor(name: string): ParentProxy | null {
    if (this.#parent === null) return null;
    const host = name.toLowerCase().replace(/\.$/, '');
    for (const rule of this.#noProxy) {
      if (rule.kind === 'all') return null;
      if (rule.kind === 'domain' && (host === rule.domain || host.endsWith(`.${rule.domain}`))) return null;
    }
    const family = net.isIP(host);
    if (family !== 0 && this.#blocks.check(host, family === 6 ? 'ipv6' : 'ipv4')) return null;
    return this.#parent;
  }

  /**
   * A connected TCP socket to the upstream `destination` (its name and port, which `no_proxy` is read against),
   * dialled at `address` (what `upstream.resolve` made of it). Rejects with ETIMEDOUT past `timeoutMs`.
   */
  tcp(destination: HostPort, address: HostPort, timeoutMs: number): Promise<net.Socket> {
    const parent = this.parentFor(destination.host);
    return parent === null ? direct(address, timeoutMs) : this.#throughParent(parent, destination, timeoutMs);
  }

  /**
   * A tunnel through the parent to the destination by its name: the parent resolves it and filters by it, so
   * `upstream.resolve` (this machine's view) is never what a parent is asked for.
   */
  async #throughParent(parent: ParentProxy, destination: HostPort, timeoutMs: number): Promise<net.Socket> {
    // CONNECT always names the port (RFC 9110 §9.3.6).
    const authority = `${destination.host.includes(':') ? `[${destination.host}]` : destination.host}:${destination.port}`;
    const headers: Record<string, string> = { host: authority };
    if (parent.credentialsSecret !== null) {
      if (this.#secrets === null) throw new ParentProxyError(0, { cause: new Error('no secret source for the parent proxy credentials') });
      const secret = await this.#secrets.get(parent.credentialsSecret);
      headers['proxy-authorization'] = `Basic ${Buffer.from(secret.reveal(), 'utf8').toString('base64')}`;
    }
    return new Promise<net.Socket>((resolve, reject) => {
      const req = http.request({ host: parent.host, port: parent.port, method: 'CONNECT', path: authority, headers, agent: false });
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('parent proxy connect timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
      req.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          socket.destroy();
          reject(new ParentProxyError(status));
          return;
        }
        if (head.length > 0) socket.unshift(head);
        socket.setNoDelay(true);
        resolve(socket);
      });
      // A parent that answers CONNECT with a plain response (no tunnel) ends up here too.
      req.once('response', (res: http.IncomingMessage) => {
        clearTimeout(timer);
        res.resume();
        req.destroy();
        reject(new ParentProxyError(res.statusCode ?? 0));
      });
      req.once('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        reject(err.code === 'ETIMEDOUT' ? err : new ParentProxyError(0, { cause: err }));
      });
      req.end();
    });
  }
}

function direct(address: HostPort, timeoutMs: number): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    // Nagle off: a request's head and body (or a body's chunks) go as separate small writes, and with Nagle the
    // second waited for the upstream's delayed ACK, 40 ms, on every request with a body (bench/stall.mjs).
    const socket = net.connect({ host: address.host, port: address.port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
