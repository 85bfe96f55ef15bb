/** WebSocket bytes by hand, for what no well-behaved client sends: handshakes, masked frames, and the frames read back. */
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import { rawTlsVia } from './clients.js';
import { waitFor, type Harness } from './harness.js';

export const handshake = (path: string, host: string, extra: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${extra}\r\n`;

/** Unmasked server frames → { opcode, payload } list. */
export function parseFrames(buf: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const opcode = (buf[i] ?? 0) & 0x0f;
    let len = (buf[i + 1] ?? 0) & 0x7f;
    let off = i + 2;
    if (len === 126) { len = buf.readUInt16BE(off); off += 2; }
    else if (len === 127) { len = Number(buf.readBigUInt64BE(off)); off += 8; }
    if (off + len > buf.length) break;
    out.push({ opcode, payload: buf.subarray(off, off + len) });
    i = off + len;
  }
  return out;
}

/** A masked client frame; `declaredLength` may claim more than is sent (a message that never ends). */
export function clientFrame(opcode: number, payload: Buffer, fin = true, declaredLength = payload.length): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] ?? 0)));
  const len = declaredLength;
  const first = (fin ? 0x80 : 0) | opcode;
  let head: Buffer;
  if (len < 126) head = Buffer.from([first, 0x80 | len]);
  else if (len < 65536) head = Buffer.from([first, 0x80 | 126, len >> 8, len & 0xff]);
  else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, mask, masked]);
}

export interface RawWs { readonly head: string; readonly rest: () => Buffer; readonly socket: tls.TLSSocket; readonly closed: Promise<void> }

/** Sends a handshake on an open TLS socket; the 101 head's text and a reader of every byte after it. */
export async function wsOn(t: tls.TLSSocket, path: string, host: string, extra: string): Promise<RawWs> {
  let buf = Buffer.alloc(0);
  t.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); });
  t.on('error', () => {});
  const closed = new Promise<void>((r) => t.once('close', () => r()));
  t.write(handshake(path, host, extra));
  await waitFor(() => buf.includes('\r\n\r\n') || t.destroyed, 5000);
  const end = buf.indexOf('\r\n\r\n');
  const head = end < 0 ? buf.toString('latin1') : buf.subarray(0, end + 4).toString('latin1');
  return { head, rest: () => (end < 0 ? Buffer.alloc(0) : buf.subarray(end + 4)), socket: t, closed };
}

/** A raw WebSocket through keyswap's CONNECT to `host`. */
export async function rawWs(h: Harness, path: string, extra: string, host = 'ws.example.test'): Promise<RawWs> {
  return wsOn(await rawTlsVia(h, host), path, host, extra);
}
