import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/harness.js';
import { isRoot, PH, TRANSPARENT_PORT, startFixture, type Fixture } from './netns-fixture.js';

/*
 * Attack: slow the locked agent's transparent service down as any other local user, cheaply. Every connection to
 * a transparent listener makes keyswap read and split the whole of /proc/net/tcp (or tcp6) before anything else
 * (src/proxy/peer-uid.ts, on libuv's 4-thread pool, with no limit on connections waiting for it). Another user
 * grows the table with idle loopback connections of its own (each pair: two lines), then dials the transparent
 * listener in a loop: each dial costs it one connect and keyswap one full read of a multi-megabyte table.
 */

let fx: Fixture | null = null;
let attacker: ChildProcess | null = null;

beforeAll(async () => {
  if (!isRoot) return;
  fx = await startFixture('tf');
  const lock = fx.keyswapCli(['egress', 'lock', '--uid', String(fx.agentUid), '--transparent', '--config', `${fx.dir}/keyswap.yaml`]);
  if (lock.status !== 0) throw new Error(String(lock.stderr));
}, 60_000);

afterAll(async () => {
  attacker?.kill('SIGKILL');
  await fx?.stop();
});

const FLOOD = `import socket,threading,time,sys
held=[]
l=socket.socket(); l.bind(("127.0.0.1",0)); l.listen(4096)
def acc():
  while True:
    c,_=l.accept(); held.append(c)
threading.Thread(target=acc,daemon=True).start()
for i in range(int(sys.argv[1])):
  try: held.append(socket.create_connection(l.getsockname()))
  except OSError: break
time.sleep(0.5)
print("table grown",len(held),flush=True)
def dial():
  end=time.time()+40
  while time.time()<end:
    try:
      s=socket.create_connection(("127.0.0.1",int(sys.argv[2])),timeout=5); s.close()
    except OSError: time.sleep(0.01)
for _ in range(64): threading.Thread(target=dial,daemon=True).start()
print("flooding",flush=True)
time.sleep(41)`;

const agentRequest = (f: Fixture, tag: string): { out: string; ms: number } => f.as(f.agentUid, ['curl', '-s', '--noproxy', '*', '--max-time', '20', '--resolve', `api.example.test:443:${f.netIp}`, '--cacert', `${f.dir}/agent-ca.pem`,
  '-H', `Authorization: Bearer ${PH}`, '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.test/v1/${tag}`], undefined, 30_000);

describe.skipIf(!isRoot)('transparent listener: another user floods the peer-UID lookup', () => {
  it('the locked agent\'s HTTPS is still served (within curl\'s 20 s) while another user floods the listener', async () => {
    const f = fx as Fixture;
    const before = agentRequest(f, 'before');
    expect(before.out).toBe('200');
    attacker = spawn('ip', ['netns', 'exec', f.agentNs, 'setpriv', `--reuid=${f.attackerUid}`, `--regid=${f.attackerUid}`, '--clear-groups', '/usr/bin/python3', '-c', FLOOD, process.env.KEYSWAP_ATTACK_HELD ?? '9000', process.env.KEYSWAP_ATTACK_PORT ?? String(TRANSPARENT_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    attacker.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
    attacker.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
    expect(await waitFor(() => out.includes('flooding'), 60_000), out).toBe(true);
    await new Promise((r) => setTimeout(r, 3000));
    const during = [agentRequest(f, 'during1'), agentRequest(f, 'during2'), agentRequest(f, 'during3')];
    console.log(`${out.trim()}\nbefore: ${before.out} in ${before.ms} ms; during: ${during.map((d) => `${d.out} in ${d.ms} ms`).join(', ')}`);
    // Served is the property; how fast is the bench's to measure, not a test's to assert.
    for (const d of during) expect(d.out).toBe('200');
  }, 120_000);
});
