import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import type tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { cliCollect, startCli } from '../helpers/cli.js';
import { rawTlsVia } from '../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { clientFrame, parseFrames, wsOn } from '../helpers/ws-frames.js';
import { startWsUpstream, type WsUpstream } from '../helpers/ws-upstream.js';

/*
 * Issue #28: the kill switch. `keyswap client revoke` and `keyswap lockdown` act on the running keyswap through its
 * control socket, with no reload: a keep-alive agent requesting every 50 ms is refused (or cut) within 1 s of the
 * command returning, over HTTP/1.1, HTTP/2 and a WebSocket. Lockdown leaves unbound traffic alone, survives a
 * restart, and every change is an `operator` audit record.
 */

const TOKEN = 'ks_killswitch-agent-token-0123456789';
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const PH = 'sk-PLACEHOLDER-KILL-0123456789abcdef';
const WS_PH = 'wsm-PLACEHOLDER-KILL-0123456789abcdef';
const AUTH = `agent-a:${TOKEN}`;

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
      - { host: ws.example.test }
  WS_KEY:
    placeholder: "${WS_PH}"
    inject: { type: websocket_message }
    bindings:
      - { host: ws.example.test }
`;

let h: Harness;
let ws: WsUpstream | null = null;
afterEach(async () => {
  await h?.close();
  await ws?.close();
  ws = null;
});

async function start(): Promise<void> {
  const testCa = createTestCa();
  ws = await startWsUpstream({ tls: testCa.issue(['ws.example.test']), auditPath: () => h.auditPath });
  h = await startHarness({
    testCa,
    secrets: SECRETS,
    secretValues: { WS_KEY: 'ws-real-value-canary-0123' },
    resolve: { 'ws.example.test:443': `127.0.0.1:${ws.port}` },
    top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY, WS_KEY] }\n  agent-b: { token_sha256: "${sha('ks_other-agent-0123456789')}", secrets: [TEST_API_KEY] }\n`,
  });
}

const configPath = (): string => path.join(h.dir, 'keyswap.yaml');
/** Runs an operator command; resolves with when it returned. */
async function operator(...args: string[]): Promise<number> {
  const r = await cliCollect([...args, '--config', configPath()], { cwd: h.dir });
  expect(r.code, r.stderr).toBe(0);
  return Date.now();
}

/** A keep-alive HTTP/1.1 agent sending `request` every 50 ms; records when each answer's status arrived. */
async function keepAliveAgent(request: string): Promise<{ socket: tls.TLSSocket; statuses: { status: number; at: number }[]; closedAt: Promise<number>; stop: () => Promise<void> }> {
  const socket = await rawTlsVia(h, 'api.example.test', 443, {}, AUTH);
  const statuses: { status: number; at: number }[] = [];
  let got = '';
  socket.on('data', (c: Buffer) => {
    got += c.toString('latin1');
    for (let m = /HTTP\/1\.1 (\d{3}) /.exec(got); m !== null; m = /HTTP\/1\.1 (\d{3}) /.exec(got)) {
      statuses.push({ status: Number(m[1]), at: Date.now() });
      got = got.slice(m.index + m[0].length);
    }
  });
  socket.on('error', () => {});
  let closed = false;
  const closedAt = new Promise<number>((resolve) => socket.once('close', () => { closed = true; resolve(Date.now()); }));
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; i < 400 && !closed && !stopped; i++) {
      socket.write(request);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { socket, statuses, closedAt, stop: async () => { stopped = true; await loop; } };
}

const injecting = `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\n\r\n`;

describe('client revoke: live, within 1 s, no reload', () => {
  it('HTTP/1.1: the keep-alive agent is cut within 1 s of `keyswap client revoke` returning; the config agrees; audited', async () => {
    await start();
    const agent = await keepAliveAgent(injecting);
    expect(await waitFor(() => agent.statuses.filter((s) => s.status === 200).length >= 3, 5000)).toBe(true);
    const returned = await operator('client', 'revoke', 'agent-a');
    const cut = await agent.closedAt;
    await agent.stop();
    expect(cut - returned).toBeLessThan(1000);
    console.log(`revoke, HTTP/1.1: connection closed ${cut - returned} ms after the command returned`);
    expect(readFileSync(configPath(), 'utf8')).not.toContain('agent-a:');
    const records = h.auditRecords();
    expect(records.some((r) => r.type === 'operator' && r.actor === 'cli' && r.action === 'client_revoked' && r.target === 'agent-a')).toBe(true);
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'client_disconnected' && r.client === 'agent-a' && r.reason === 'client_revoked'), 3000)).toBe(true);
    expect(records.filter((r) => r.type === 'config_reload')).toEqual([]);
    // A new connection with the old token: 407.
    await expect(rawTlsVia(h, 'api.example.test', 443, {}, AUTH)).rejects.toThrow(/407/);
    expect(findCanary(h)).toEqual([]);
  });

  it('HTTP/2: the session is closed within 1 s', async () => {
    await start();
    const socket = await rawTlsVia(h, 'api.example.test', 443, { ALPNProtocols: ['h2'] }, AUTH);
    const session = http2.connect('https://api.example.test', { createConnection: () => socket });
    session.on('error', () => {});
    let closed = false;
    const closedAt = new Promise<number>((resolve) => session.once('close', () => { closed = true; resolve(Date.now()); }));
    const statuses: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 400 && !closed; i++) {
        const s = session.request({ ':path': '/v1/echo', authorization: `Bearer ${PH}` });
        s.on('response', (hd) => statuses.push(Number(hd[':status'])));
        s.on('error', () => {});
        s.resume();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    expect(await waitFor(() => statuses.filter((s) => s === 200).length >= 3, 5000)).toBe(true);
    const returned = await operator('client', 'revoke', 'agent-a');
    const cut = await closedAt;
    await loop;
    console.log(`revoke, HTTP/2: session closed ${cut - returned} ms after the command returned`);
    expect(cut - returned).toBeLessThan(1000);
  });

  it('WebSocket: closed 1008 within 1 s', async () => {
    await start();
    const sock = await rawTlsVia(h, 'ws.example.test', 443, {}, AUTH);
    const w = await wsOn(sock, '/ws/echo', 'ws.example.test', `Authorization: Bearer ${PH}\r\n`);
    expect(w.head).toMatch(/^HTTP\/1\.1 101 /);
    const closedAt = w.closed.then(() => Date.now());
    const returned = await operator('client', 'revoke', 'agent-a');
    const cut = await closedAt;
    console.log(`revoke, WebSocket: closed ${cut - returned} ms after the command returned`);
    expect(cut - returned).toBeLessThan(1000);
    expect(parseFrames(w.rest()).find((f) => f.opcode === 8)?.payload.readUInt16BE(0)).toBe(1008);
  });
});

describe('lockdown: every injection stops within 1 s, unbound traffic flows, it survives a restart', () => {
  it('HTTP/1.1: the first 503 lockdown comes within 1 s of the command; a request with no placeholder still passes; --off restores', async () => {
    await start();
    const agent = await keepAliveAgent(injecting);
    expect(await waitFor(() => agent.statuses.filter((s) => s.status === 200).length >= 3, 5000)).toBe(true);
    const returned = await operator('lockdown', '--reason', 'incident 42');
    // A refusal closes its HTTP/1.1 connection: the 503 is the last thing on it.
    await agent.closedAt;
    await agent.stop();
    const refused = agent.statuses.find((s) => s.status === 503);
    expect(refused).toBeDefined();
    console.log(`lockdown, HTTP/1.1: first 503 ${(refused?.at ?? 0) - returned} ms after the command returned`);
    expect((refused?.at ?? 0) - returned).toBeLessThan(1000);
    const lockedAt = (h.auditRecords().find((r) => r.type === 'operator' && r.action === 'lockdown')?.ts as string);
    expect(h.auditRecords().filter((r) => r.type === 'inject_decision' && r.decision === 'allowed' && (r.ts as string) > lockedAt)).toEqual([]);

    // Unbound traffic (no placeholder) is unaffected.
    const plain = await keepAliveAgent('GET /v1/plain HTTP/1.1\r\nHost: api.example.test\r\n\r\n');
    expect(await waitFor(() => plain.statuses.length >= 2, 5000)).toBe(true);
    await plain.stop();
    plain.socket.destroy();
    expect(plain.statuses.every((s) => s.status === 200)).toBe(true);

    await operator('lockdown', '--off');
    const again = await keepAliveAgent(injecting);
    expect(await waitFor(() => again.statuses.length >= 1, 5000)).toBe(true);
    await again.stop();
    again.socket.destroy();
    expect(again.statuses[0]?.status).toBe(200);
    const ops = h.auditRecords().filter((r) => r.type === 'operator');
    expect(ops.map((r) => [r.action, r.actor, r.reason])).toEqual([['lockdown', 'cli', 'incident 42'], ['lockdown_off', 'cli', null]]);
    expect(findCanary(h)).toEqual([]);
  });

  it('HTTP/2 and WebSocket: the next stream gets 503, the next substituted message closes the socket 1008, within 1 s', async () => {
    await start();
    const socket = await rawTlsVia(h, 'api.example.test', 443, { ALPNProtocols: ['h2'] }, AUTH);
    const session = http2.connect('https://api.example.test', { createConnection: () => socket });
    session.on('error', () => {});
    const statuses: { status: number; at: number }[] = [];
    let stop = false;
    const loop = (async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        const s = session.request({ ':path': '/v1/echo', authorization: `Bearer ${PH}` });
        s.on('response', (hd) => statuses.push({ status: Number(hd[':status']), at: Date.now() }));
        s.on('error', () => {});
        s.resume();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const sock = await rawTlsVia(h, 'ws.example.test', 443, {}, AUTH);
    const w = await wsOn(sock, '/ws/echo', 'ws.example.test', `Authorization: Bearer ${PH}\r\n`);
    expect(w.head).toMatch(/^HTTP\/1\.1 101 /);
    // The 1008 close frame is the refusal (the socket then waits for the agent's close reply, as WebSocket does).
    let closeFrameAt = 0;
    const messages = (async () => {
      for (let i = 0; i < 400 && closeFrameAt === 0 && !sock.destroyed; i++) {
        if (parseFrames(w.rest()).some((f) => f.opcode === 8)) {
          closeFrameAt = Date.now();
          break;
        }
        sock.write(clientFrame(1, Buffer.from(`message ${i}: ${WS_PH}`)));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    expect(await waitFor(() => statuses.filter((s) => s.status === 200).length >= 3 && (ws?.seen.at(-1)?.messages.length ?? 0) >= 2, 5000), JSON.stringify([statuses.length, ws?.seen.length, ws?.seen.at(-1)?.messages.length])).toBe(true);
    const returned = await operator('lockdown');
    const valuesAtReturn = (ws?.seen.at(-1)?.messages ?? []).filter((m) => m.data.toString('utf8').includes('ws-real-value')).length;
    expect(await waitFor(() => statuses.some((s) => s.status === 503), 3000)).toBe(true);
    stop = true;
    await loop;
    await messages;
    const wsCut = closeFrameAt;
    sock.destroy();
    session.destroy();
    const first503 = statuses.find((s) => s.status === 503)?.at ?? 0;
    console.log(`lockdown: HTTP/2 first 503 ${first503 - returned} ms, WebSocket closed ${wsCut - returned} ms after the command returned`);
    expect(first503 - returned).toBeLessThan(1000);
    expect(wsCut - returned).toBeLessThan(1000);
    expect(parseFrames(w.rest()).find((f) => f.opcode === 8)?.payload.readUInt16BE(0)).toBe(1008);
    // Once the command returned, no message carrying the value went upstream (one already past its check may).
    const withValue = (): number => (ws?.seen.at(-1)?.messages ?? []).filter((m) => m.data.toString('utf8').includes('ws-real-value')).length;
    expect(withValue()).toBeLessThanOrEqual(valuesAtReturn + 1);
  });

  it('survives a restart: a keyswap started under lockdown refuses until --off; the state file is 0600', async () => {
    await start();
    await operator('lockdown', '--reason', 'before restart');
    const file = path.join(h.dir, 'state', 'operator.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await h.stop();
    const again = startCli(['serve', '--config', configPath()], { cwd: h.dir, env: { HOME: h.dir, KEYSWAP_SECRET_TEST_API_KEY: h.canary, KEYSWAP_SECRET_WS_KEY: 'x' } });
    try {
      const port = await again.listeningPort();
      const via = { ...h, proxyPort: port };
      const status = async (): Promise<string> => {
        const t = await rawTlsVia(via, 'api.example.test', 443, {}, AUTH);
        t.write(injecting);
        const head = await new Promise<string>((resolve) => t.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
        t.destroy();
        return head.slice(0, 12);
      };
      expect(await status()).toBe('HTTP/1.1 503');
      expect(again.stdout() + again.stderr()).toMatch(/lockdown is on/);
      const off = await cliCollect(['lockdown', '--off', '--config', configPath()], { cwd: h.dir });
      expect(off.code, off.stderr).toBe(0);
      expect(await status()).toBe('HTTP/1.1 200');
    } finally {
      await again.stop();
    }
  });
});
