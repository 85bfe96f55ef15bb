import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SECRETS, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

// A connection is authenticated at its CONNECT, but keep-alive gives it no end: the client must be looked up
// again in the configuration in force on every request, or a revoked or expired token keeps its secrets.
const TOKEN = 'ks_token-for-agent-a-0123456789';
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    secrets: DEFAULT_SECRETS,
    top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY] }\n  agent-b: { token_sha256: "${sha('ks_other-token-0123456789')}", secrets: [TEST_API_KEY] }`,
  });
});
afterAll(async () => {
  await h.close();
});

/** A decrypted connection opened as agent-a, a way to send one keep-alive request on it, and its closing. */
async function connectAsAgentA(): Promise<{ send: (request: string) => Promise<string>; closed: Promise<void> }> {
  const raw = net.connect(h.proxyPort, '127.0.0.1');
  await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
  raw.write(`CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: Basic ${Buffer.from(`agent-a:${TOKEN}`).toString('base64')}\r\n\r\n`);
  await new Promise<void>((resolve) => raw.once('data', () => resolve()));
  const socket = tls.connect({ socket: raw, servername: 'api.example.test', ca: h.caPem });
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let got = '';
  socket.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  return {
    closed,
    send: async (request) => {
      const from = got.length;
      socket.write(request);
      await waitFor(() => /\r\n\r\n[\s\S]*$/.test(got.slice(from)) && (got.slice(from).includes('keyswap:') || got.slice(from).endsWith('}')));
      return got.slice(from);
    },
  };
}

/** A new CONNECT as agent-a with `token`: what keyswap answers it. */
async function connectWith(token: string): Promise<string> {
  const raw = net.connect(h.proxyPort, '127.0.0.1');
  await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
  raw.write(`CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: Basic ${Buffer.from(`agent-a:${token}`).toString('base64')}\r\n\r\n`);
  const head = await new Promise<string>((resolve) => raw.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
  raw.destroy();
  return head;
}

describe('the client of an open connection is checked against the configuration in force', () => {
  // First: the reload test below removes agent-a.
  it('a rotated token: the connection opened with the old one is closed at the reload, nothing more is sent, and the old token gets 407', async () => {
    const c = await connectAsAgentA();
    const request = `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`;
    expect(await c.send(request)).toMatch(/^HTTP\/1\.1 200 /);
    const before = h.upstream.requests.length;
    const configPath = path.join(h.dir, 'keyswap.yaml');
    const reloads = h.auditRecords().filter((r) => r.type === 'config_reload').length;
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(sha(TOKEN), sha('ks_rotated-token-0123456789')));
    h.child.kill('SIGHUP');
    expect(await waitFor(() => h.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length > reloads)).toBe(true);
    await c.closed;
    expect(h.upstream.requests.length).toBe(before);
    expect(await connectWith(TOKEN)).toMatch(/^HTTP\/1\.1 407 /);
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(sha('ks_rotated-token-0123456789'), sha(TOKEN)));
    h.child.kill('SIGHUP');
    expect(await waitFor(() => h.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length > reloads + 1)).toBe(true);
  });

  it('a client removed by a reload loses the connection it opened before (closed at once, nothing sent), and a new one gets 407', async () => {
    const c = await connectAsAgentA();
    const request = `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\n\r\n`;
    expect(await c.send(request)).toMatch(/^HTTP\/1\.1 200 /);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    const before = h.upstream.requests.length;

    const configPath = path.join(h.dir, 'keyswap.yaml');
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(/\n {2}agent-a: [^\n]*/, ''));
    h.child.kill('SIGHUP');
    expect(await waitFor(() => h.auditRecords().filter((r) => r.type === 'config_reload' && r.ok === true).length >= 3)).toBe(true);

    await c.closed;
    expect(h.upstream.requests.length).toBe(before);
    expect(await connectWith(TOKEN)).toMatch(/^HTTP\/1\.1 407 /);
  });
});
