import http from 'node:http';

/** What the agent asks for: a binding for one of its secrets, and why. */
export interface AccessAsk {
  readonly secret: string;
  readonly host: string;
  readonly port?: number;
  readonly methods?: readonly string[];
  readonly paths?: readonly string[];
  readonly reason: string;
}

/**
 * Sends the agent's access request to the running keyswap, through the proxy the agent itself uses (its proxy URL,
 * credentials included): keyswap knows which client asks the way it knows who sends any request. Resolves with
 * keyswap's answer as text for the agent; rejects only when keyswap cannot be reached.
 */
export function askAccess(proxyUrl: string, ask: AccessAsk): Promise<{ readonly ok: boolean; readonly text: string }> {
  const proxy = new URL(proxyUrl);
  if (proxy.protocol !== 'http:') return Promise.resolve({ ok: false, text: `keyswap_request_access goes through an http:// proxy URL; this one is ${proxy.protocol}//` });
  const auth = proxy.username === '' ? {} : { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` };
  const body = JSON.stringify(ask);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 80), method: 'POST', path: 'http://keyswap.invalid/v1/access-requests', agent: false, timeout: 10_000,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...auth },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (text.length < 8192) text += c; });
      res.on('end', () => {
        let parsed: { message?: unknown; error?: unknown; id?: unknown } = {};
        try {
          parsed = JSON.parse(text) as typeof parsed;
        } catch {
          // keyswap's own text refusals (407, a lockdown) are read as they are
        }
        const ok = res.statusCode === 202;
        resolve({ ok, text: ok ? `request ${String(parsed.id)}: ${String(parsed.message)}` : `keyswap refused the request (${res.statusCode ?? 0}): ${String(parsed.error ?? text.trim())}` });
      });
    });
    req.on('timeout', () => req.destroy(new Error('keyswap did not answer in 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}
