import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES, rawRefusal, upstreamRefusal } from '../../src/proxy/refusal.js';
import { startHarness, type Harness } from '../helpers/harness.js';

// Issue #17: every refusal's status and body, from the one table. Changing one is a change agents see.
const PINNED: Record<string, readonly [number, string]> = {
  bad_request: [400, 'keyswap: bad request\n'],
  sni_host_mismatch: [421, 'keyswap: request host does not match the CONNECT target\n'],
  unbound_destination: [403, 'keyswap: destination not allowed\n'],
  ambiguous_placeholder: [400, 'keyswap: two placeholders compete for one credential site\n'],
  secret_unavailable: [503, 'keyswap: secret unavailable\n'],
  audit_unavailable: [503, 'keyswap: audit log unavailable\n'],
  upstream_failed: [502, 'keyswap: upstream connection failed (reset or unreachable)\n'],
  upstream_unresolved: [502, 'keyswap: upstream host name did not resolve\n'],
  upstream_refused: [502, 'keyswap: upstream refused the connection\n'],
  upstream_untrusted: [502, 'keyswap: upstream certificate not trusted\n'],
  upstream_timeout: [504, 'keyswap: upstream timed out\n'],
  plaintext_via_parent: [403, 'keyswap: a secret is never sent over plain http through the parent proxy (upstream.proxy); use https, or list the host in upstream.no_proxy\n'],
  parent_proxy_failed: [502, 'keyswap: the parent proxy (upstream.proxy) refused or failed the connection\n'],
  rate_limited: [429, 'keyswap: rate limit for this credential reached; retry later\n'],
  usage_limit_reached: [429, 'keyswap: usage quota for this credential reached; retry after the period ends\n'],
  proxy_auth_required: [407, 'keyswap: proxy authentication required (http://NAME:TOKEN@host:port)\n'],
  upstream_echoed_secret: [502, 'keyswap: upstream response echoed a credential; blocked\n'],
  plaintext_https_not_loopback: [403, 'keyswap: an https:// request line is accepted only from this host; send HTTPS through CONNECT\n'],
  not_a_proxy_request: [400, 'keyswap: this is a proxy; send absolute-form or CONNECT requests, or use a route: /p/<route>/\n'],
  unknown_route: [404, 'keyswap: no such route (see routes: in keyswap.yaml)\n'],
  browser_request: [403, 'keyswap: requests from web pages are refused\n'],
  route_host_not_loopback: [421, 'keyswap: address keyswap as 127.0.0.1, localhost or [::1]\n'],
  upgrade_unsupported: [501, 'keyswap: protocol upgrades are not supported\n'],
  headers_too_large: [431, 'keyswap: request headers too large\n'],
  request_timeout: [408, 'keyswap: request head not received in time\n'],
  upload_timeout: [408, 'keyswap: request body not received in time (timeouts.upload_idle_seconds, upload_max_seconds)\n'],
  self_destination: [403, 'keyswap: a request to keyswap itself is refused\n'],
  signing_unsupported: [400, 'keyswap: this request cannot be re-signed (SigV4 streaming payloads, or a body both signed and rewritten)\n'],
  signing_scope_violation: [403, 'keyswap: a signed header names a resource the binding does not allow reading (x-amz-copy-source)\n'],
  body_too_large_to_sign: [413, 'keyswap: a body signed by keyswap may be at most 16 MiB (S3: send x-amz-content-sha256: UNSIGNED-PAYLOAD)\n'],
  token_exchange_failed: [503, 'keyswap: could not obtain a credential from its token endpoint; nothing was sent\n'],
  upstream_encoding_unsupported: [502, 'keyswap: upstream response used an encoding keyswap cannot inspect; blocked\n'],
  lockdown: [503, 'keyswap: lockdown: an operator has stopped every use of secrets (keyswap lockdown --off lifts it)\n'],
  approval_denied: [403, 'keyswap: an operator denied this request\n'],
  approval_timeout: [403, 'keyswap: this request needs an operator\'s approval, and none came in time\n'],
  approval_queue_full: [429, 'keyswap: too many requests are waiting for an operator\'s approval; retry later\n'],
  mcp_tool_denied: [403, 'keyswap: this MCP server\'s tool policy (mcp.tools) does not allow a tool this request calls\n'],
  mcp_body_unreadable: [400, 'keyswap: this MCP server has a tool policy, so a request body must be JSON-RPC keyswap can read: UTF-8 JSON, uncompressed, no key twice\n'],
  mcp_body_too_large: [413, 'keyswap: a request to an MCP server with a tool policy may carry at most 4 MiB\n'],
  mcp_bodies_busy: [503, 'keyswap: too many request bodies to MCP servers with a tool policy are being read at once; retry later\n'],
  approval_body_too_large: [413, 'keyswap: a request held for approval may carry a body of at most 1 MiB\n'],
  shared_state_unavailable: [503, 'keyswap: the state replicas share (rate limits, quotas, minted credentials) is unavailable; nothing was sent\n'],
  internal: [500, 'keyswap: internal error\n'],
};

describe('the refusal table', () => {
  it('pins every refusal’s status and body', () => {
    expect(OUTCOMES).toEqual(PINNED);
  });

  it('the socket form carries the same status, body and length, and closes', () => {
    for (const [code, [status, body]] of Object.entries(PINNED)) {
      const raw = rawRefusal(code as keyof typeof OUTCOMES);
      expect(raw.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      expect(raw.endsWith(`\r\n\r\n${body}`)).toBe(true);
      expect(raw).toContain(`content-length: ${Buffer.byteLength(body)}\r\n`);
      expect(raw).toContain('connection: close\r\n');
    }
  });

  it('upstream failures are named by category, never by message', () => {
    const of = (code: string) => upstreamRefusal(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443 secret-ish text'), { code })).code;
    expect([of('ECONNREFUSED'), of('ENOTFOUND'), of('EAI_AGAIN'), of('ETIMEDOUT'), of('ECONNRESET'), of('EHOSTUNREACH'), of('CERT_HAS_EXPIRED')]).toEqual([
      'upstream_refused', 'upstream_unresolved', 'upstream_unresolved', 'upstream_timeout', 'upstream_failed', 'upstream_failed', 'upstream_untrusted',
    ]);
  });
});

describe('a tunnel that cannot connect (issue #13)', () => {
  let h: Harness;
  let closedPort: number;
  beforeAll(async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    closedPort = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    h = await startHarness({ resolve: { 'refused.example.test:443': `127.0.0.1:${closedPort}` } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('is answered 502 naming the cause, audited as tunnel_failed, and never recorded as a tls_passthrough', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(h.proxyPort, '127.0.0.1', () => sock.write('CONNECT refused.example.test:443 HTTP/1.1\r\nHost: refused.example.test:443\r\n\r\n'));
      let got = '';
      sock.on('data', (c: Buffer) => { got += c.toString('latin1'); });
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
      sock.setTimeout(10_000, () => sock.destroy(new Error('no answer')));
    });
    expect(answer.startsWith('HTTP/1.1 502 Bad Gateway\r\n')).toBe(true);
    expect(answer.endsWith('\r\n\r\nkeyswap: upstream refused the connection\n')).toBe(true);
    await h.stop();
    const records = h.auditRecords().filter((r) => (r.destination as { host?: string } | undefined)?.host === 'refused.example.test');
    expect(records.map((r) => [r.type, r.cause, r.status])).toEqual([['tunnel_failed', 'upstream_refused', 502]]);
    expect(h.stderr()).toContain('tunnel failed');
  });
});
