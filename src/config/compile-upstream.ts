import net from 'node:net';
import type { RawConfig } from './schema.js';
import type { Report } from './report.js';
import type { Config, HostPort, NoProxyRule, ParentProxy } from './types.js';
import { parseHostPort } from './host-port.js';

/** The `upstream:` section: resolve overrides, the parent proxy and its exceptions, timeouts. */
export function compileUpstream(raw: RawConfig, abs: (p: string) => string, err: Report): Config['upstream'] {
  const resolve = new Map<string, HostPort>();
  for (const [key, value] of Object.entries(raw.upstream?.resolve ?? {})) {
    const from = parseHostPort(key, false);
    const to = parseHostPort(value, false);
    if (from === null || from.host !== from.host.toLowerCase()) err(['upstream', 'resolve', key], `key '${key}' must be a lower-case host:port`, true);
    else if (to === null) err(['upstream', 'resolve', key], `'${value}' is not host:port (the address to dial instead)`);
    else resolve.set(`${from.host}:${from.port}`, to);
  }
  const proxyText = raw.upstream?.proxy ?? null;
  const parent = proxyText === null ? null : parseParent(proxyText, raw.upstream?.proxy_credentials ?? null, err);
  if (proxyText === null && raw.upstream?.proxy_credentials !== undefined) err(['upstream', 'proxy_credentials'], 'names credentials for a parent proxy, but upstream.proxy is not set', true);
  if (proxyText === null && raw.upstream?.no_proxy !== undefined) err(['upstream', 'no_proxy'], 'lists exceptions to a parent proxy, but upstream.proxy is not set', true);
  const noProxy = (raw.upstream?.no_proxy ?? []).flatMap((entry, i): NoProxyRule[] => {
    const rule = parseNoProxy(entry);
    if (rule === null) err(['upstream', 'no_proxy', i], `'${entry}' is not a host name, .domain, IP address, CIDR range or *`);
    return rule === null ? [] : [rule];
  });
  return {
    extraCaFile: raw.upstream?.extra_ca_file ? abs(raw.upstream.extra_ca_file) : null,
    resolve,
    connectTimeoutMs: (raw.upstream?.connect_timeout_seconds ?? 10) * 1000,
    idleTimeoutMs: (raw.upstream?.idle_timeout_seconds ?? 60) * 1000,
    parent,
    noProxy,
  };
}

/**
 * `http://host:port` only. Credentials never sit in the URL, where `keyswap check`, a ps listing or a pasted
 * config would show them: they are a backend secret (`proxy_credentials`), fetched like any other.
 */
function parseParent(text: string, credentials: string | null, err: Report): ParentProxy | null {
  const at = ['upstream', 'proxy'];
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    err(at, `'${text}' is not a URL; write http://host:port`);
    return null;
  }
  if (url.username !== '' || url.password !== '') {
    err(at, 'holds credentials; never put them in the URL: store user:password as a secret (keyswap secret set NAME) and name it in upstream.proxy_credentials');
    return null;
  }
  if (url.protocol !== 'http:') {
    err(at, `scheme '${url.protocol.replace(/:$/, '')}' is not supported: keyswap speaks HTTP CONNECT to its parent proxy (http://host:port); TLS to the real upstream runs inside the tunnel, verified end to end`);
    return null;
  }
  if (url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    err(at, `'${text}' must be exactly http://host:port, with the port written out (e.g. http://proxy.corp.example:3128)`);
    return null;
  }
  return { host: url.hostname.replace(/^\[|\]$/g, '').toLowerCase(), port: Number(url.port), credentialsSecret: credentials };
}

/** curl's NO_PROXY reading: a name matches itself and its subdomains (a leading dot or `*.` is the same), `*` matches all. */
export function parseNoProxy(entry: string): NoProxyRule | null {
  const text = entry.trim().toLowerCase();
  if (text === '*') return { kind: 'all' };
  const slash = text.indexOf('/');
  if (slash > 0) {
    const address = text.slice(0, slash);
    const bits = Number(text.slice(slash + 1));
    const family = net.isIP(address);
    if (family === 0 || !/^[0-9]{1,3}$/.test(text.slice(slash + 1)) || bits > (family === 4 ? 32 : 128)) return null;
    return { kind: 'cidr', address, bits, family: family === 4 ? 'ipv4' : 'ipv6' };
  }
  const bare = text.replace(/^\[|\]$/g, '');
  if (net.isIP(bare) !== 0) return { kind: 'ip', address: bare };
  const domain = text.replace(/^\*?\./, '');
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(domain)) return null;
  return { kind: 'domain', domain };
}
