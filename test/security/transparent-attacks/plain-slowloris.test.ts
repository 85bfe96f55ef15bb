import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, startFixture, type Fixture } from './netns-fixture.js';

/*
 * Probe (held): a slow request head on the port-80 transparent listener is cut at timeouts.request_head_seconds,
 * like on every other listener; a connection that never sends a byte is closed by keep-alive.
 */
let fx: Fixture | null = null;
beforeAll(async () => {
  if (!isRoot) return;
  fx = await startFixture('sl', { extraYaml: 'timeouts: { request_head_seconds: 2 }\n' });
  const lock = fx.keyswapCli(['egress', 'lock', '--uid', String(fx.agentUid), '--transparent', '--config', `${fx.dir}/keyswap.yaml`]);
  if (lock.status !== 0) throw new Error(String(lock.stderr));
}, 60_000);
afterAll(async () => { await fx?.stop(); });

const SLOW = `import socket,sys,time,select
s=socket.create_connection((sys.argv[1],80)); s.settimeout(12)
t=time.time(); s.sendall(b"GET /slow HTTP/1.1\\r\\nHost: api.exa")
out=b""
try:
  for i in range(10):
    if select.select([s],[],[],1)[0]: break
    s.sendall(b"x")
except OSError as e: pass
try:
  while True:
    c=s.recv(4096)
    if not c: break
    out+=c
except OSError: pass
print(round(time.time()-t,1), out[:40])`;

describe.skipIf(!isRoot)('port 80 transparent listener: slow heads', () => {
  it('a head dribbled a byte a second is cut near request_head_seconds', () => {
    const f = fx as Fixture;
    const r = f.as(f.agentUid, ['/usr/bin/python3', '-c', SLOW, f.netIp], undefined, 30_000);
    console.log('slowloris:', r.out.trim());
    const secs = Number(r.out.trim().split(' ')[0]);
    expect(secs).toBeLessThan(8);
  }, 40_000);
});
