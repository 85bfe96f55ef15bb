/**
 * Loaded into the agent's own Node process by `keyswap run` (NODE_OPTIONS=--require …). Node 20 ignores
 * HTTPS_PROXY everywhere, so without this an agent's requests would go straight to the API with a placeholder
 * (they fail closed, but they fail):
 * - global fetch() and undici: undici's EnvHttpProxyAgent becomes the global dispatcher, which Node's built-in
 *   fetch shares;
 * - node:https (https.request, got, node-fetch@2, axios's https transport, any https.Agent): every https.Agent
 *   opens its connections through the proxy with CONNECT, unless NO_PROXY names the host.
 * Both trust NODE_EXTRA_CA_CERTS like any TLS client in the process. Node versions that route through the proxy
 * themselves (NODE_USE_ENV_PROXY=1, Node ≥ 22.21 or 24.5) keep their own node:https handling. Never fatal: an
 * agent that cannot load this still runs, and says why.
 */
import { realpathSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

// keyswap itself, started from a shell that ran `eval "$(keyswap env)"`, inherits this preload: its own upstream
// connections must never be routed through whatever HTTPS_PROXY names.
if (!isKeyswapItself()) {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const undici = require('undici') as typeof import('undici');
    const proxyTls = proxyClientTls();
    undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent(proxyTls === null ? {} : { proxyTls }));
  } catch (err) {
    process.stderr.write(`keyswap: fetch() in this process will not use the proxy: ${(err as Error).message}\n`);
  }

  try {
    routeNodeHttps();
  } catch (err) {
    process.stderr.write(`keyswap: node:https in this process will not use the proxy: ${(err as Error).message}\n`);
  }
}

function isKeyswapItself(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === path.resolve(__dirname, '../cli/main.js');
  } catch {
    return false;
  }
}

type ConnectOptions = tls.ConnectionOptions & { host?: string; port?: number | string; socketPath?: string; path?: string | null };

function routeNodeHttps(): void {
  if (nodeRoutesItself()) return;
  // undici's order (EnvHttpProxyAgent): the lower-case spelling first, so fetch() and node:https agree.
  const proxyText = process.env.https_proxy ?? process.env.HTTPS_PROXY ?? '';
  if (proxyText === '') return;
  const proxy = new URL(proxyText);
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') throw new Error(`HTTPS_PROXY ${proxy.protocol}// is not supported here (http:// or https:// only)`);
  const noProxy = parseNoProxy(process.env.no_proxy ?? process.env.NO_PROXY ?? '');
  const proxyAuth = proxy.username === '' ? null
    : `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  type CreateConnection = (this: https.Agent, options: ConnectOptions, callback?: unknown) => tls.TLSSocket;
  const proto = https.Agent.prototype as unknown as { createConnection: CreateConnection };
  const direct = proto.createConnection;
  proto.createConnection = function createConnection(options) {
    const host = stripBrackets(String(options.host ?? 'localhost'));
    const port = Number(options.port ?? 443);
    // A unix socket is a local service, not a destination a proxy could reach.
    if (options.socketPath !== undefined || (typeof options.path === 'string' && options.path !== '') || isBypassed(noProxy, host, port)) return direct.call(this, options);
    // The agent's own TLS set-up (session cache, servername, the caller's ca/checkServerIdentity), over a stream
    // that carries TLS once the proxy has answered the CONNECT: the socket is returned at once, as Node expects.
    const { stream, raw } = tunnel(proxy, proxyAuth, host, port);
    const socket = direct.call(this, { ...options, socket: stream as net.Socket });
    // A keep-alive agent unrefs the sockets it pools so the process can exit; the TLS socket cannot pass that on
    // to the proxy connection beneath the stream, so it is passed on here.
    const [unref, ref] = [socket.unref.bind(socket), socket.ref.bind(socket)];
    socket.unref = () => { raw.unref(); return unref(); };
    socket.ref = () => { raw.ref(); return ref(); };
    return socket;
  } as CreateConnection;
}

/**
 * A CONNECT tunnel to host:port through the proxy, as a stream that is usable at once: what is written before the
 * proxy answers waits, and a refusal destroys it with an error naming the proxy's status.
 */
function tunnel(proxy: URL, auth: string | null, host: string, port: number): { readonly stream: Duplex; readonly raw: net.Socket } {
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  // An https:// proxy (keyswap's TLS listener): TLS to the proxy first, with the agent's certificate when
  // `keyswap run --cert --key` gave one.
  const socket = proxy.protocol === 'https:'
    ? tls.connect({ host: stripBrackets(proxy.hostname), port: Number(proxy.port || 443), servername: net.isIP(stripBrackets(proxy.hostname)) ? undefined : proxy.hostname, ALPNProtocols: ['http/1.1'], ...proxyClientTls() })
    : net.connect({ host: stripBrackets(proxy.hostname), port: Number(proxy.port || 80) });
  const waiting: [Buffer, (err?: Error | null) => void][] = [];
  let open = false;
  const stream = new Duplex({
    write(chunk: Buffer, _enc, done) {
      if (open) socket.write(chunk, done);
      else waiting.push([chunk, done]);
    },
    final(done) {
      socket.end(done);
    },
    read() {
      if (open) socket.resume();
    },
    destroy(err, done) {
      socket.destroy();
      done(err);
    },
  });
  socket.once('error', (err) => stream.destroy(err));
  // A proxy that closes before its answer (a restart mid-CONNECT) must fail the request, never leave it waiting.
  socket.once('close', () => { if (!open) stream.destroy(new Error(`the proxy closed the connection before answering CONNECT ${authority}`)); });
  socket.once(proxy.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth === null ? '' : `Proxy-Authorization: ${auth}\r\n`}\r\n`);
  });
  let head = Buffer.alloc(0);
  const onHead = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 16_384) stream.destroy(new Error('the proxy sent an oversized CONNECT response'));
      return;
    }
    socket.off('data', onHead);
    const status = /^HTTP\/1\.[01] (\d{3})(?: |\r|$)/.exec(head.subarray(0, end).toString('latin1'))?.[1];
    if (status === undefined || !status.startsWith('2')) {
      stream.destroy(new Error(`the proxy refused CONNECT ${authority}: ${status ?? 'no status'} (see keyswap's log)`));
      return;
    }
    // A proxy never sends tunnel bytes before the client's TLS hello; anything after the head would be forged.
    if (head.length > end + 4) {
      stream.destroy(new Error('the proxy sent bytes after its CONNECT response'));
      return;
    }
    open = true;
    socket.on('data', (c: Buffer) => { if (!stream.push(c)) socket.pause(); });
    socket.once('end', () => stream.push(null));
    for (const [chunk, done] of waiting.splice(0)) socket.write(chunk, done);
  };
  socket.on('data', onHead);
  return { stream, raw: socket };
}

/** KEYSWAP_PROXY_CERT, _KEY and _CA (`keyswap run --cert --key`): the agent's certificate for keyswap's TLS listener. */
function proxyClientTls(): { cert?: string; key?: string; ca?: string } | null {
  const { KEYSWAP_PROXY_CERT: cert, KEYSWAP_PROXY_KEY: key, KEYSWAP_PROXY_CA: ca } = process.env;
  if (!cert && !ca) return null;
  return {
    ...(cert ? { cert: readFileSync(cert, 'utf8') } : {}),
    ...(key ? { key: readFileSync(key, 'utf8') } : {}),
    ...(ca ? { ca: readFileSync(ca, 'utf8') } : {}),
  };
}

interface NoProxyEntry { readonly host: string; readonly port: number | null }

/** NO_PROXY as curl and undici read it: comma/space separated names, `.suffix`/`*.suffix`, optional `:port`, `*` for all. */
function parseNoProxy(text: string): NoProxyEntry[] | 'all' {
  const out: NoProxyEntry[] = [];
  for (const raw of text.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return 'all';
    const m = /^(\[[^\]]+\]|[^:]+|[0-9a-f:]+)(?::(\d+))?$/.exec(entry);
    const host = stripBrackets(m?.[1] ?? entry).replace(/^\*?\./, '');
    out.push({ host, port: m?.[2] !== undefined && !net.isIPv6(entry) ? Number(m[2]) : null });
  }
  return out;
}

function isBypassed(noProxy: NoProxyEntry[] | 'all', host: string, port: number): boolean {
  if (noProxy === 'all') return true;
  const name = host.toLowerCase().replace(/\.$/, '');
  // Suffixes are for names: `0.0.1` must not cover 127.0.0.1.
  const isIp = net.isIP(name) !== 0;
  return noProxy.some((e) => (e.port === null || e.port === port) && (name === e.host || (!isIp && name.endsWith(`.${e.host}`))));
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Node's own env-proxy support (NODE_USE_ENV_PROXY): 22.21+ on the 22 line, 24.5+ after. */
function nodeRoutesItself(): boolean {
  if (process.env.NODE_USE_ENV_PROXY !== '1') return false;
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 24 || (major === 24 && minor >= 5) || (major === 22 && minor >= 21);
}
