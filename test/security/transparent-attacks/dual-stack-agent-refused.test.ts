import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, PH, TRANSPARENT_HTTP_PORT, startFixture, type Fixture } from './netns-fixture.js';

/*
 * Finding (availability, fails closed): the locked agent's own connection is refused when its socket is an
 * AF_INET6 socket talking IPv4 through a v4-mapped address (Java's default, Python/Node with family 6, any
 * dual-stack client). The redirect lands on keyswap's IPv4 listener, so peerUid (src/proxy/peer-uid.ts) looks the
 * peer up in /proc/net/tcp only, but the kernel lists that socket in /proc/net/tcp6 as ::ffff:a.b.c.d.
 */

const PH2 = 'sk-PLACEHOLDER-TLSONLY-0123456789abcdef';
const CANARY2 = 'real-secret-tlsonly-5d1c0a77e2b94f31';
let fx: Fixture | null = null;

beforeAll(async () => {
  if (!isRoot) return;
  fx = await startFixture('ds', {
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

describe.skipIf(!isRoot)('transparent: a dual-stack agent socket', () => {
  it('an agent whose socket is dual-stack (AF_INET6, ::ffff: address: Java\'s default) is served over IPv4 too', () => {
    const f = fx as Fixture;
    // The connection is IPv4 on the wire, so keyswap's IPv4 listener gets it, but the agent's socket is listed in
    // /proc/net/tcp6 (as ::ffff:a.b.c.d), where peerUid never looks for an IPv4 peer: refused as "another user".
    const out = raw(`::ffff:${f.netIp}`, 80, `GET /dualstack HTTP/1.1\r\nHost: api.example.test\r\n${auth}Connection: close\r\n\r\n`);
    console.log('dual-stack agent:', JSON.stringify(out), f.audit().split('\n').filter((l) => l.includes('proxy_auth_required')).join('\n'));
    expect(out).toMatch(/^HTTP\/1\.1 200/);
  });
});
