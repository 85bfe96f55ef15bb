import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { ProxyAgent, request } from 'undici';
import type { Harness } from './harness.js';

export interface ClientResult { readonly status: number; readonly body: string; readonly headers: Record<string, string>; readonly exitCode?: number; readonly stderr?: string }

export interface CurlOptions {
  readonly method?: string;
  readonly headers?: readonly string[];
  readonly data?: string;
  readonly cacert?: string;
  readonly extra?: readonly string[];
  readonly maxTimeSeconds?: number;
  /** Proxy URL override, e.g. with NAME:TOKEN@ for client identities. */
  readonly proxy?: string;
}

/** curl through keyswap; status 0 when curl itself failed (see exitCode). */
export function curlVia(h: Harness, url: string, o: CurlOptions = {}): Promise<ClientResult> {
  const args = ['-sS', '--proxy', o.proxy ?? h.proxyUrl, '--cacert', o.cacert ?? h.caPath, '--max-time', String(o.maxTimeSeconds ?? 15), '-D', '-', '-o', '-'];
  if (o.method) args.push('-X', o.method);
  for (const hdr of o.headers ?? []) args.push('-H', hdr);
  if (o.data !== undefined) args.push('--data-binary', o.data);
  args.push(...(o.extra ?? []), url);
  return new Promise((resolve) => {
    const p = spawn('curl', args, { env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString('latin1'); });
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('close', (code) => resolve({ ...parseHttp(out), exitCode: code ?? -1, stderr: err }));
  });
}

function parseHttp(raw: string): { status: number; body: string; headers: Record<string, string> } {
  // `-D -` may print a CONNECT response head first; keep the last head.
  let rest = raw;
  let status = 0;
  let headers: Record<string, string> = {};
  while (/^HTTP\/[\d.]+ \d{3}/.test(rest)) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end).split('\r\n');
    // keyswap's own answer to CONNECT is not the response: a failed TLS handshake leaves nothing after it.
    status = /connection established/i.test(head[0] ?? '') ? 0 : Number(head[0]?.split(' ')[1]);
    headers = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    rest = rest.slice(end + 4);
  }
  return { status, body: rest, headers };
}

/** undici@7 through keyswap with its ProxyAgent, trusting keyswap's CA. */
export async function undiciVia(h: Harness, url: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<ClientResult> {
  const agent = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } });
  try {
    const res = await request(url, { dispatcher: agent, method: (o.method ?? 'GET') as 'GET', headers: o.headers, body: o.body });
    const body = await res.body.text();
    return { status: res.statusCode, body, headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])) };
  } finally {
    await agent.close();
  }
}

let python: string | null | undefined;
/** A python3 that has `requests` (CI installs Debian's python3-requests). */
export function pythonWithRequests(): string {
  if (python === undefined) {
    python = null;
    for (const candidate of ['python3', '/usr/bin/python3']) {
      try {
        execFileSync(candidate, ['-c', 'import requests'], { stdio: 'ignore' });
        python = candidate;
        break;
      } catch {
        // try the next one
      }
    }
  }
  if (python === null) throw new Error('no python3 with the requests module; install python3-requests (.ci/run does)');
  return python;
}

const PY = `
import json, sys, requests
a = json.loads(sys.argv[1])
r = requests.request(a['method'], a['url'], headers=a['headers'], proxies={'https': a['proxy'], 'http': a['proxy']}, verify=a['ca'], timeout=15)
print(json.dumps({'status': r.status_code, 'body': r.text, 'headers': dict(r.headers)}))
`;

/** Python requests through keyswap. */
export function pythonRequestsVia(h: Harness, url: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<ClientResult> {
  const args = JSON.stringify({ method: o.method ?? 'GET', url, headers: o.headers ?? {}, proxy: h.proxyUrl, ca: h.caPath });
  return new Promise((resolve, reject) => {
    const p = spawn(pythonWithRequests(), ['-c', PY, args], { env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`python requests failed (${code}): ${err}`));
      else resolve(JSON.parse(out) as ClientResult);
    });
  });
}

/** Opens a CONNECT tunnel by hand (as NAME:TOKEN with `proxyAuth`) and returns the TLS socket keyswap terminates. */
export async function rawTlsVia(h: Harness, host: string, port = 443, tlsOptions: tls.ConnectionOptions = {}, proxyAuth: string | null = null): Promise<tls.TLSSocket> {
  const sock = net.connect(h.proxyPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('connect', () => resolve());
  });
  const auth = proxyAuth === null ? '' : `Proxy-Authorization: Basic ${Buffer.from(proxyAuth).toString('base64')}\r\n`;
  sock.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}\r\n`);
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (c: Buffer): void => {
      head += c.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        sock.off('data', onData);
        if (head.startsWith('HTTP/1.1 200')) resolve();
        else reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      }
    };
    sock.on('data', onData);
  });
  const t = tls.connect({ socket: sock, servername: host, ca: h.caPem, ...tlsOptions });
  await new Promise<void>((resolve, reject) => {
    t.once('secureConnect', () => resolve());
    t.once('error', reject);
  });
  return t;
}

/** Writes raw bytes and collects the answer until the socket closes or the bound runs out. */
export function exchange(socket: net.Socket | tls.TLSSocket, bytes: string, ms = 5_000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(got);
    }, ms);
    socket.on('data', (c: Buffer) => { got += c.toString('latin1'); });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.once('error', () => {});
    socket.write(bytes);
  });
}

/** A plain (non-TLS) socket to keyswap's listener, for absolute-form http:// requests. */
export async function rawPlain(h: Harness): Promise<net.Socket> {
  const sock = net.connect(h.proxyPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  return sock;
}
