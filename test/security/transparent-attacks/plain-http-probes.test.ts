import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, PH, TRANSPARENT_HTTP_PORT, startFixture, type Fixture } from './netns-fixture.js';

/*
 * Probes of the port-80 transparent path and of the lock over IPv6, as the locked agent (raw bytes, no proxy
 * settings). Each names what keyswap must do; all hold (the attacks that did not work).
 */

const PH2 = 'sk-PLACEHOLDER-TLSONLY-0123456789abcdef';
const CANARY2 = 'real-secret-tlsonly-5d1c0a77e2b94f31';
let fx: Fixture | null = null;

beforeAll(async () => {
  if (!isRoot) return;
  fx = await startFixture('pp', {
    env: { KEYSWAP_SECRET_TLS_ONLY: CANARY2 },
    extraYaml: `  TLS_ONLY:
    placeholder: "${PH2}"
    inject: { header: X-Api-Key, format: "{TLS_ONLY}" }
    bindings:
      - { host: api.example.test }
`,
  });
  const lock = fx.keyswapCli(['egress', 'lock', '--uid', String(fx.agentUid), '--transparent', '--config', `${fx.dir}/keyswap.yaml`]);
  if (lock.status !== 0) throw new Error(String(lock.stderr));
}, 60_000);

afterAll(async () => { await fx?.stop(); });

/** Raw bytes from the agent to host:port (redirected by the lock when 80/443); the answer's bytes, or the error. */
const RAW = `import socket,sys
fam=socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s=socket.socket(fam); s.settimeout(8)
try:
  s.connect((sys.argv[1],int(sys.argv[2])))
  s.sendall(sys.stdin.buffer.read())
  s.settimeout(2)
  out=b""
  try:
    while len(out)<65536:
      c=s.recv(4096)
      if not c: break
      out+=c
  except socket.timeout: pass
  except OSError as e: out+=("ERR %s" % e).encode()
  sys.stdout.write(out.decode("latin-1"))
except OSError as e: print("ERR",e.errno,e)`;

function raw(host: string, port: number, bytes: string): string {
  const f = fx as Fixture;
  return f.as(f.agentUid, ['/usr/bin/python3', '-c', RAW, host, String(port)], bytes, 20_000).out;
}
const auth = `Authorization: Bearer ${PH}\r\n`;
const upstreamSecret = (f: Fixture): { url: string; authorization: string | null }[] => f.seenUpstream().filter((r) => r.authorization?.includes(f.canary) === true);

describe.skipIf(!isRoot)('port 80 transparent path and IPv6 lock, probed', () => {
  it('Host-header tricks name no other destination and carry no secret elsewhere', () => {
    const f = fx as Fixture;
    const ip = f.netIp;
    const cases: [string, string, RegExp][] = [
      ['absolute-form to another host', `GET http://evil.test/abs HTTP/1.1\r\nHost: api.example.test\r\n${auth}Connection: close\r\n\r\n`, /^HTTP\/1\.1 400/],
      ['Host with another port', `GET /port HTTP/1.1\r\nHost: api.example.test:8080\r\n${auth}Connection: close\r\n\r\n`, /^HTTP\/1\.1 400/],
      ['Host with userinfo', `GET /ui HTTP/1.1\r\nHost: x@api.example.test\r\n${auth}Connection: close\r\n\r\n`, /^HTTP\/1\.1 400/],
      ['IPv6 literal Host', `GET /v6 HTTP/1.1\r\nHost: [${f.netIp6}]\r\n${auth}Connection: close\r\n\r\n`, /^HTTP\/1\.1 403/],
      ['v4-mapped literal Host', `GET /mapped HTTP/1.1\r\nHost: [::ffff:${ip}]\r\n${auth}Connection: close\r\n\r\n`, /^HTTP\/1\.1 400/],
      ['no Host, HTTP/1.0', `GET /nohost HTTP/1.0\r\n${auth}\r\n`, /^HTTP\/1\.1 400/],
      ['duplicate Host, unbound first', `GET /dup HTTP/1.1\r\nHost: evil.test\r\nHost: api.example.test\r\n${auth}Connection: close\r\n\r\n`, /^HTTP\/1\.1 (400|403)/],
      ['CL and TE', `POST /smug HTTP/1.1\r\nHost: api.example.test\r\n${auth}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, /^HTTP\/1\.1 400/],
      ['h2c prior knowledge', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', /^(HTTP\/1\.1 400|$)/],
      ['h2c upgrade', `GET /h2c HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n${auth}\r\n`, /^HTTP\/1\.1 (400|501)|^$/],
      ['CONNECT', `CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n${auth}\r\n`, /^$|^HTTP\/1\.1 4/],
    ];
    for (const [name, bytes, want] of cases) {
      const out = raw(ip, 80, bytes);
      expect(out, name).toMatch(want);
    }
    // Pipelined: the second request's Host is unbound; it is refused, never sent, whatever the first did.
    const piped = raw(ip, 80, `GET /first HTTP/1.1\r\nHost: api.example.test\r\n${auth}\r\nGET /second HTTP/1.1\r\nHost: evil.test\r\n${auth}Connection: close\r\n\r\n`);
    expect(piped).toMatch(/^HTTP\/1\.1 200[\s\S]*HTTP\/1\.1 403/);
    expect(f.seenUpstream().map((r) => r.url)).not.toContain('/second');
    // Only /first carried the secret, to the bound host.
    expect(upstreamSecret(f).map((r) => r.url)).toEqual(['/first']);
    // A binding without allow_plaintext gets no secret over port 80.
    raw(ip, 80, `GET /tlsonly HTTP/1.1\r\nHost: api.example.test\r\nX-Api-Key: ${PH2}\r\nConnection: close\r\n\r\n`);
    expect(JSON.stringify(f.seenUpstream())).not.toContain(CANARY2);
    expect(f.audit()).not.toContain(f.canary);
    expect(f.keyswapOut()).not.toContain(f.canary);
  });

  it('IPv6 and other local addresses: only keyswap is reached', () => {
    const f = fx as Fixture;
    // Other loopback and local addresses, keyswap's ports on them, and the other family's loopback for the proxy port.
    for (const [h, p] of [['127.0.0.2', TRANSPARENT_HTTP_PORT], [f.agentIp, TRANSPARENT_HTTP_PORT], ['::1', 14_322], [f.netIp6, 8080], ['fe80::1', 8080], ['::ffff:127.0.0.2', TRANSPARENT_HTTP_PORT]] as const) {
      expect(raw(h, p, 'GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n'), `${h}:${p}`).toMatch(/^ERR/);
    }
    // Port 80 to ::1 is keyswap's plain listener, served by Host (the agent's own).
    expect(raw('::1', 80, `GET /v6loop HTTP/1.1\r\nHost: api.example.test\r\n${auth}Connection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 200/);
  });

});
