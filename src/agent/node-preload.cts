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
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';

try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const undici = require('undici') as typeof import('undici');
  undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
} catch (err) {
  process.stderr.write(`keyswap: fetch() in this process will not use the proxy: ${(err as Error).message}\n`);
}

try {
  routeNodeHttps();
} catch (err) {
  process.stderr.write(`keyswap: node:https in this process will not use the proxy: ${(err as Error).message}\n`);
}

function routeNodeHttps(): void {
  if (nodeRoutesItself()) return;
  const proxyText = process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '';
  if (proxyText === '') return;
  const proxy = new URL(proxyText);
  if (proxy.protocol !== 'http:') throw new Error(`HTTPS_PROXY ${proxy.protocol}// is not supported here (http:// only)`);
  const noProxy = parseNoProxy(process.env.NO_PROXY ?? process.env.no_proxy ?? '');
  const proxyAuth = proxy.username === '' ? null
    : `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  type CreateConnection = (this: https.Agent, options: tls.ConnectionOptions & { host?: string; port?: number | string }) => tls.TLSSocket;
  const proto = https.Agent.prototype as unknown as { createConnection: CreateConnection };
  const direct = proto.createConnection;
  proto.createConnection = function createConnection(options, callback?: (err: Error | null, socket?: tls.TLSSocket) => void) {
    const host = stripBrackets(String(options.host ?? 'localhost'));
    const port = Number(options.port ?? 443);
    if (callback === undefined || isBypassed(noProxy, host, port)) return direct.call(this, options);
    tunnel(proxy, proxyAuth, host, port, (err, socket) => {
      if (err !== null || socket === undefined) callback(err ?? new Error('no tunnel'));
      // The agent's own TLS set-up (session cache, servername, the caller's ca/checkServerIdentity) on the tunnel.
      else callback(null, direct.call(this, { ...options, socket }));
    });
    return undefined as unknown as tls.TLSSocket; // http.Agent waits for the callback
  } as CreateConnection;
}

/** A CONNECT tunnel to host:port through the proxy; the callback gets the raw socket once the proxy said 2xx. */
function tunnel(proxy: URL, auth: string | null, host: string, port: number, done: (err: Error | null, socket?: net.Socket) => void): void {
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const socket = net.connect({ host: stripBrackets(proxy.hostname), port: Number(proxy.port || 80) });
  let head = Buffer.alloc(0);
  const fail = (err: Error): void => {
    socket.destroy();
    done(err);
  };
  socket.once('error', fail);
  socket.once('connect', () => {
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth === null ? '' : `Proxy-Authorization: ${auth}\r\n`}\r\n`);
  });
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 16_384) fail(new Error('the proxy sent an oversized CONNECT response'));
      return;
    }
    socket.off('data', onData);
    socket.off('error', fail);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1];
    if (status === undefined || !status.startsWith('2')) {
      fail(new Error(`the proxy refused CONNECT ${authority}: ${status ?? 'no status'} (see keyswap's log)`));
      return;
    }
    // A proxy never sends tunnel bytes before the client's TLS hello; anything after the head would be forged.
    if (head.length > end + 4) {
      fail(new Error('the proxy sent bytes after its CONNECT response'));
      return;
    }
    done(null, socket);
  };
  socket.on('data', onData);
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
  return noProxy.some((e) => (e.port === null || e.port === port) && (name === e.host || name.endsWith(`.${e.host}`)));
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
