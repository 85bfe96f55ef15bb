import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawPlain, rawTlsVia } from '../../helpers/clients.js';
import { findCanary, startHarness, waitFor, type Harness } from '../../helpers/harness.js';

/*
 * A refusal is answered once its deny record is written. A refused request whose body is still arriving can have
 * that body break (a malformed chunk) while the refusal waits for its record: the listener's own unrecorded 400
 * then went out in its place, and the recorded refusal was written to a connection already ended. The agent must
 * get the answer the audit log says it got, once, and nothing goes upstream.
 */
let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h.close(); });

const ROUNDS = 5;

/** Sends the refused request's head and first chunk, then (in a separate write) a chunk that is not one; returns all it got. */
async function brokenAfterRefusal(socket: net.Socket, head: string): Promise<string> {
  const got: Buffer[] = [];
  socket.on('data', (c: Buffer) => got.push(c));
  socket.on('error', () => {});
  socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
  socket.write('zz\r\n');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { socket.destroy(); resolve(); }, 5_000);
    socket.once('close', () => { clearTimeout(timer); resolve(); });
  });
  return Buffer.concat(got).toString('latin1');
}

const statusLines = (text: string): string[] => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
const denies = (reason: string): Record<string, unknown>[] => h.auditRecords().filter((r) => r.type === 'deny' && r.reason === reason);

describe('a refused request whose body breaks while its refusal waits for its record', () => {
  it('on a decrypted connection (421, Host disagrees): the agent gets the recorded 421, never an unrecorded 400', async () => {
    const seen: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = await rawTlsVia(h, 'api.example.test');
      const text = await brokenAfterRefusal(t, `POST /v1/upload?round=${i} HTTP/1.1\r\nHost: other.example.test\r\n`);
      seen.push(statusLines(text).join(','));
    }
    expect(seen).toEqual(Array.from({ length: ROUNDS }, () => 'HTTP/1.1 421'));
    await waitFor(() => denies('sni_host_mismatch').length >= ROUNDS);
    expect(denies('sni_host_mismatch').map((r) => r.status)).toEqual(Array.from({ length: ROUNDS }, () => 421));
    expect(h.upstream.requests).toHaveLength(0);
    expect(findCanary(h)).toEqual([]);
  }, 60_000);

  it('on the plain listener (400 not_a_proxy_request): the agent gets the recorded refusal, with its own body', async () => {
    const seen: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const text = await brokenAfterRefusal(await rawPlain(h), `POST /x?round=${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
      seen.push(`${statusLines(text).join(',')} ${text.includes('keyswap: this is a proxy') ? 'recorded' : 'unrecorded'}`);
    }
    expect(seen).toEqual(Array.from({ length: ROUNDS }, () => 'HTTP/1.1 400 recorded'));
    await waitFor(() => denies('not_a_proxy_request').length >= ROUNDS);
    expect(denies('not_a_proxy_request')).toHaveLength(ROUNDS);
  }, 60_000);

  it('the process stays up and serves afterwards', async () => {
    const t = await rawTlsVia(h, 'api.example.test');
    const got: Buffer[] = [];
    t.on('data', (c: Buffer) => got.push(c));
    t.write('GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n');
    await new Promise<void>((resolve) => { t.once('close', () => resolve()); setTimeout(resolve, 5_000); });
    expect(Buffer.concat(got).toString('latin1').slice(0, 12)).toBe('HTTP/1.1 200');
  }, 30_000);
});
