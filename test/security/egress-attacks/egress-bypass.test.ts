import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/harness.js';
import { inNs, isRoot, makeWorld, PROBE_PY, sh, sha, type World } from './world.js';

/*
 * Attack review of the egress lock (issue #29): a compromised agent, locked by `keyswap egress lock`, tries to
 * reach anything but keyswap's listeners. keyswap: policy deny, clients A and B, transparent client A, a console.
 */

const UID_A = 61_000 + (process.pid % 500); // agent A: locked --transparent
const UID_B = UID_A + 1; // agent B: locked, no transparent
const UID_C = UID_A + 2; // another local user, not locked
const PORT = 14_322;
const TPORT = 14_324;
const UI_PORT = 14_330;
const PH_A = 'sk-PLACEHOLDER-ATTACK29-A-0123456789abcdef';
const PH_B = 'sk-PLACEHOLDER-ATTACK29-B-0123456789abcdef';
const CANARY_A = `real-secret-a-${randomBytes(8).toString('hex')}`;
const CANARY_B = `real-secret-b-${randomBytes(8).toString('hex')}`;
const TOKEN_A = `ks_${randomBytes(24).toString('base64url')}`;
const TOKEN_B = `ks_${randomBytes(24).toString('base64url')}`;

let w: World;
let ks: Awaited<ReturnType<World['startKeyswap']>>;
let probe = '';

const runProbes = (uid: number, probes: object[]): Record<string, string> => {
  const r = w.asUid(uid, ['/usr/bin/python3', probe, JSON.stringify(probes)], 60_000);
  try {
    return JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as Record<string, string>;
  } catch {
    throw new Error(`probe output: ${r.out}`);
  }
};
const lock = (uid: number, extra: readonly string[] = []): void => {
  const r = w.keyswapCli(['egress', 'lock', '--uid', String(uid), ...extra, '--config', ks.cfg]);
  expect(r.status, String(r.stderr)).toBe(0);
};
const unlock = (uid: number): void => { w.keyswapCli(['egress', 'unlock', '--uid', String(uid)]); };
const alive = (): boolean => ks.proc.exitCode === null && ks.proc.signalCode === null;

beforeAll(async () => {
  if (!isRoot) return;
  w = await makeWorld('byp', 40 + (process.pid % 50));
  probe = path.join(w.dir, 'probe.py');
  writeFileSync(probe, PROBE_PY, { mode: 0o644 });
  ks = await w.startKeyswap('main', `version: 1
listen: 127.0.0.1:${PORT}
state_dir: ${w.dir}/state
audit: { path: ${w.dir}/audit.jsonl }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
unmatched_destination_policy: deny
transparent: { listen: 127.0.0.1:${TPORT}, uid: ${UID_A}, client: agent-a }
ui: { listen: 127.0.0.1:${UI_PORT} }
upstream:
  extra_ca_file: ${w.dir}/test-ca.pem
  resolve:
    "api.example.test:443": "${w.netIp}:443"
    "b.example.test:443": "${w.netIp}:443"
clients:
  agent-a: { token_sha256: "${sha(TOKEN_A)}", secrets: [SECRET_A] }
  agent-b: { token_sha256: "${sha(TOKEN_B)}", secrets: [SECRET_B] }
secrets:
  SECRET_A:
    placeholder: "${PH_A}"
    inject: { header: Authorization, format: "Bearer {SECRET_A}" }
    bindings:
      - { host: api.example.test }
  SECRET_B:
    placeholder: "${PH_B}"
    inject: { header: Authorization, format: "Bearer {SECRET_B}" }
    bindings:
      - { host: b.example.test }
`, { KEYSWAP_SECRET_SECRET_A: CANARY_A, KEYSWAP_SECRET_SECRET_B: CANARY_B });
}, 90_000);

afterAll(async () => {
  if (!isRoot) return;
  await w.teardown();
});

describe.skipIf(!isRoot)('egress attacks: going around the egress lock', () => {
  it('direct egress of a locked UID: other loopback ports (v4, v6, console), the internet (v4, v6, v4-mapped), UDP, ICMP, raw, SCTP all fail', () => {
    lock(UID_A, ['--transparent']);
    lock(UID_B);
    try {
      const probes = [
        { kind: 'tcp', name: 'local4', host: '127.0.0.1', port: 18080, payload: 'LOCAL4' },
        { kind: 'tcp', name: 'local6', host: '::1', port: 18080, payload: 'LOCAL6' },
        { kind: 'tcp', name: 'localAgentIp', host: w.agentIp, port: 18080, payload: 'LOCALAGENTIP' },
        { kind: 'tcp', name: 'console', host: '127.0.0.1', port: UI_PORT, payload: 'GET / HTTP/1.0\r\n\r\n' },
        { kind: 'tcp', name: 'net4', host: w.netIp, port: 8080, payload: 'NET4' },
        { kind: 'tcp', name: 'net6', host: w.netIp6, port: 8080, payload: 'NET6' },
        { kind: 'tcp6mapped', name: 'net4mapped', host: w.netIp, port: 8080, payload: 'NET4MAPPED' },
        { kind: 'udp', name: 'udp4', host: w.netIp, port: 8080, payload: 'UDP4' },
        { kind: 'udp', name: 'udp6', host: w.netIp6, port: 8080, payload: 'UDP6' },
        { kind: 'udp', name: 'udpLocal', host: '127.0.0.1', port: 18080, payload: 'UDPLOCAL' },
        { kind: 'ping', name: 'ping4', host: w.netIp },
        { kind: 'ping', name: 'ping6', host: w.netIp6 },
        { kind: 'raw', name: 'raw' },
        { kind: 'sctp', name: 'sctp', host: w.netIp, port: 8080 },
        // the keyswap listener port on another loopback address / on the agent's own address
        { kind: 'tcp', name: 'proxyPortOther', host: '127.0.0.2', port: PORT, payload: 'X' },
      ];
      // A counter in the internet's namespace: what of the agent's arrives there, whatever the socket says.
      sh('ip', inNs(w.netNs, ['nft', '-f', '-']));
      const counter = spawnSync('ip', inNs(w.netNs, ['nft', '-f', '-']), { input: `table inet cnt {\n chain in { type filter hook input priority -300; policy accept; ip saddr ${w.agentIp} counter; ip6 saddr ${w.netIp6.replace(/::2$/, '::1')} counter; }\n}\n`, encoding: 'utf8' });
      expect(counter.status, counter.stderr).toBe(0);
      for (const uid of [UID_A, UID_B]) {
        const res = runProbes(uid, probes);
        console.log(`UID ${uid}:`, JSON.stringify(res));
        for (const [k, v] of Object.entries(res)) expect(v, `${uid} ${k}`).not.toMatch(/^(connected|reply|created)/);
      }
      const counted = String(sh('ip', inNs(w.netNs, ['nft', 'list', 'table', 'inet', 'cnt'])).stdout);
      console.log(counted);
      expect(counted).not.toMatch(/packets [1-9]/);
      const seen = JSON.stringify(w.recorderLog());
      for (const tag of ['LOCAL4', 'LOCAL6', 'LOCALAGENTIP', 'NET4', 'NET6', 'NET4MAPPED', 'UDP4', 'UDP6', 'UDPLOCAL']) expect(seen, tag).not.toContain(tag);
      // B (no --transparent) may not reach the transparent listener either.
      const bT = runProbes(UID_B, [{ kind: 'tcp', name: 't', host: '127.0.0.1', port: TPORT, payload: 'x' }]);
      expect(bT.t).toMatch(/^err/);
    } finally {
      unlock(UID_A);
      unlock(UID_B);
    }
  }, 120_000);

  it('a connection opened before the lock carries nothing after it', async () => {
    const script = path.join(w.dir, 'prelock.py');
    const flag = path.join(w.dir, 'prelock.flag');
    writeFileSync(script, `
import socket, time, os, sys
s = socket.create_connection(("${w.netIp}", 8080), timeout=5)
s.sendall(b"BEFORE-LOCK"); print("sent-before", flush=True)
for i in range(200):
    if os.path.exists("${flag}"): break
    time.sleep(0.05)
try:
    s.sendall(b"AFTER-LOCK-1"); time.sleep(0.5); s.sendall(b"AFTER-LOCK-2"); time.sleep(0.5)
    print("after:", s.recv(100), flush=True)
except Exception as e: print("after-err:", e, flush=True)
`, { mode: 0o644 });
    const child = w.spawnAsUid(UID_A, ['/usr/bin/python3', script]);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
    expect(await waitFor(() => out.includes('sent-before'), 10_000), out).toBe(true);
    lock(UID_A);
    try {
      writeFileSync(flag, '');
      await waitFor(() => child.exitCode !== null, 15_000);
      console.log('pre-lock socket:', out);
      const seen = JSON.stringify(w.recorderLog());
      expect(seen).toContain('BEFORE-LOCK');
      expect(seen).not.toContain('AFTER-LOCK');
    } finally {
      child.kill('SIGKILL');
      unlock(UID_A);
    }
  }, 60_000);

  it('the locked agent cannot lift or edit its lock (nft as itself, in a user namespace of its own)', () => {
    lock(UID_A);
    try {
      const attempts = [
        ['nft', 'delete', 'table', 'inet', 'keyswap'],
        ['unshare', '-Ur', 'nft', 'delete', 'table', 'inet', 'keyswap'],
        ['unshare', '-Ur', 'nft', 'flush', 'chain', 'inet', 'keyswap', 'output'],
        ['unshare', '-Ur', 'sh', '-c', `nft add element inet keyswap locked '{ ${UID_A + 100} : accept }'; nft delete element inet keyswap locked '{ ${UID_A} }'`],
      ];
      for (const a of attempts) {
        const r = w.asUid(UID_A, a);
        console.log(a.join(' '), '=>', r.status, r.out.trim().slice(0, 200));
      }
      const listed = sh('ip', inNs(w.agentNs, ['nft', 'list', 'table', 'inet', 'keyswap']));
      expect(String(listed.stdout)).toContain(`${UID_A} : jump uid_${UID_A}`);
      const res = runProbes(UID_A, [{ kind: 'tcp', name: 'net4', host: w.netIp, port: 8080, payload: 'AFTERUNSHARE' }]);
      expect(res.net4).toMatch(/^err/);
      // In a network namespace of its own (unshare -Urn) it owns the rules, but reaches nothing outside.
      const own = w.asUid(UID_A, ['unshare', '-Urn', '/usr/bin/python3', probe, JSON.stringify([{ kind: 'tcp', name: 'n', host: w.netIp, port: 8080, payload: 'OWNNS' }])]);
      expect(own.out).not.toContain('connected');
    } finally {
      unlock(UID_A);
    }
  }, 60_000);

  it('through keyswap under deny: CONNECT to the console, a local service, the internet on another port, is refused', () => {
    lock(UID_B);
    try {
      for (const target of [`127.0.0.1:${UI_PORT}`, '127.0.0.1:18080', `${w.netIp}:8080`, `localhost:${TPORT}`, `127.0.0.1:${TPORT}`]) {
        const r = w.asUid(UID_B, ['curl', '-s', '--max-time', '5', '-p', '--proxy', `http://agent-b:${TOKEN_B}@127.0.0.1:${PORT}`, '-o', '/dev/null', '-w', '%{http_code}', `http://${target}/x`]);
        console.log('CONNECT', target, r.out);
        expect(r.out).not.toMatch(/^2/);
      }
    } finally {
      unlock(UID_B);
    }
  }, 60_000);

  it('transparent listener: a local user who is not agent-a (unlocked UID C, no token) gets agent-a\'s secret injected', () => {
    // Baseline: without a token, the proxy listener refuses UID C (clients: are configured).
    const viaProxy = w.asUid(UID_C, ['curl', '-s', '--max-time', '10', '--proxy', `http://127.0.0.1:${PORT}`, '--cacert', ks.caPem, '-H', `Authorization: Bearer ${PH_A}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/uidc-proxy']);
    expect(viaProxy.out).not.toBe('200');
    // The same user dials the transparent listener itself, with the SNI of agent-a's bound host.
    const direct = w.asUid(UID_C, ['curl', '-s', '--noproxy', '*', '--max-time', '10', '--connect-to', `api.example.test:443:127.0.0.1:${TPORT}`, '--cacert', ks.caPem,
      '-H', `Authorization: Bearer ${PH_A}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/uidc-transparent']);
    console.log('UID C via transparent listener:', direct.out, w.upstreamLog().find((r) => r.url === '/v1/uidc-transparent'));
    expect(w.upstreamLog().find((r) => r.url === '/v1/uidc-transparent')?.authorization ?? null).not.toBe(`Bearer ${CANARY_A}`);
  }, 60_000);

  it('transparent listener: agent B, holding its own token, locked --transparent, acts as agent-a', () => {
    // The listener serves one UID (transparent.uid): a lock that would redirect another is refused…
    const refused = w.keyswapCli(['egress', 'lock', '--uid', String(UID_B), '--transparent', '--config', ks.cfg]);
    expect(refused.status).toBe(2);
    // …and so is B, were it redirected anyway (here: locked plainly, then dialling the listener itself, which its chain refuses).
    lock(UID_B);
    try {
      const r = w.asUid(UID_B, ['curl', '-s', '--noproxy', '*', '--max-time', '10', '--resolve', `api.example.test:443:${w.netIp}`, '--cacert', ks.caPem,
        '-H', `Authorization: Bearer ${PH_A}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/uidb-transparent']);
      console.log('UID B (client agent-b) via transparent:', r.out);
      expect(w.upstreamLog().find((x) => x.url === '/v1/uidb-transparent')?.authorization ?? null).not.toBe(`Bearer ${CANARY_A}`);
    } finally {
      unlock(UID_B);
    }
  }, 60_000);

  it('revoking the transparent client (keyswap client revoke agent-a) closes its transparent connections and refuses new ones', async () => {
    lock(UID_A, ['--transparent']);
    const script = path.join(w.dir, 'keepalive.cjs');
    const flag = path.join(w.dir, 'revoked.flag');
    writeFileSync(script, `
const tls = require('node:tls'); const fs = require('node:fs');
const s = tls.connect({ host: '${w.netIp}', port: 443, servername: 'api.example.test', ca: fs.readFileSync('${ks.caPem}') });
let got = ''; let n = 0;
const send = (p) => s.write('GET ' + p + ' HTTP/1.1\\r\\nHost: api.example.test\\r\\nAuthorization: Bearer ${PH_A}\\r\\n\\r\\n');
s.on('secureConnect', () => send('/v1/before-revoke'));
s.on('data', (d) => { got += d; if (n++ === 0) { console.log('first answered'); const t = setInterval(() => { if (fs.existsSync('${flag}')) { clearInterval(t); try { send('/v1/after-revoke-same-conn'); } catch (e) {} } }, 50); } });
s.on('error', (e) => { console.log('error', e.code); });
s.on('close', () => { console.log('closed; got', JSON.stringify(got.slice(0, 400))); process.exit(0); });
setTimeout(() => { console.log('timeout; got', JSON.stringify(got.slice(0, 400))); process.exit(0); }, 12000);
`, { mode: 0o644 });
    const child = w.spawnAsUid(UID_A, ['/usr/bin/node', script]);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
    try {
      expect(await waitFor(() => out.includes('first answered'), 10_000), out).toBe(true);
      const revoke = w.keyswapCli(['client', 'revoke', 'agent-a', '--config', ks.cfg]);
      console.log('revoke:', revoke.status, String(revoke.stdout), String(revoke.stderr));
      writeFileSync(flag, '');
      await waitFor(() => child.exitCode !== null, 15_000);
      const fresh = w.asUid(UID_A, ['curl', '-s', '--noproxy', '*', '--max-time', '10', '--resolve', `api.example.test:443:${w.netIp}`, '--cacert', ks.caPem,
        '-H', `Authorization: Bearer ${PH_A}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://api.example.test/v1/after-revoke-new-conn']);
      console.log('keep-alive agent:', out, 'fresh:', fresh.out);
      const log = w.upstreamLog();
      expect(log.find((x) => x.url === '/v1/before-revoke')?.authorization).toBe(`Bearer ${CANARY_A}`);
      expect(log.find((x) => x.url === '/v1/after-revoke-same-conn')?.authorization ?? null).not.toBe(`Bearer ${CANARY_A}`);
      expect(log.find((x) => x.url === '/v1/after-revoke-new-conn')?.authorization ?? null).not.toBe(`Bearer ${CANARY_A}`);
      // The operator's command must succeed too: a revoke that reports failure invites a retry or a rollback.
      expect(revoke.status, String(revoke.stderr)).toBe(0);
    } finally {
      child.kill('SIGKILL');
      unlock(UID_A);
    }
  }, 60_000);

  it('sanity: keyswap survived every probe', () => {
    expect(alive(), ks.out()).toBe(true);
    expect(existsSync(ks.cfg)).toBe(true);
  });
});
