/** Raw HTTP/2 frames and HPACK fields, for sending what no well-behaved client would (floods, bombs). */
import type { TLSSocket } from 'node:tls';
import { rawTlsVia } from './clients.js';
import type { Harness } from './harness.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const TYPE = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4, ACK: 0x1 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1), the prefix's high bits set to `mask`. */
export function hpackInt(value: number, prefixBits: number, mask: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([mask | value]);
  const out = [mask | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

const str = (s: string): Buffer => Buffer.concat([hpackInt(Buffer.byteLength(s, 'latin1'), 7, 0), Buffer.from(s, 'latin1')]);

/** A literal field with a new name: without indexing, or added to the dynamic table (`index`). */
export function literal(name: string, value: string, index = false): Buffer {
  return Buffer.concat([Buffer.from([index ? 0x40 : 0x00]), str(name), str(value)]);
}

/** A field from the tables by index (62 is the newest dynamic entry). */
export function indexed(index: number): Buffer {
  return hpackInt(index, 7, 0x80);
}

/** GET https://<authority>/<path> as a header block: :method GET, :scheme https, :path, :authority. */
export function getBlock(authority: string, path = '/v1/echo'): Buffer {
  return Buffer.concat([indexed(2), indexed(7), Buffer.concat([Buffer.from([0x04]), str(path)]), Buffer.concat([Buffer.from([0x01]), str(authority)])]);
}

export interface RawFrame { readonly type: number; readonly flags: number; readonly stream: number; readonly payload: Buffer }

/** A raw HTTP/2 connection through keyswap's CONNECT (preface and SETTINGS sent), collecting every frame it gets. */
export async function rawH2(h: Harness, host: string): Promise<{ socket: TLSSocket; frames: RawFrame[]; closed: Promise<void> }> {
  const socket = await rawTlsVia(h, host, 443, { ALPNProtocols: ['h2'] });
  const frames: RawFrame[] = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      frames.push({ type: buf[3] ?? 0, flags: buf[4] ?? 0, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
      buf = buf.subarray(9 + len);
    }
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(Buffer.concat([PREFACE, frame(TYPE.SETTINGS, 0, 0)]));
  return { socket, frames, closed };
}

/** One gRPC message as it travels in a body: a compressed flag, a 4-byte length, the message. */
export function grpcFrame(msg: Buffer, compressed: boolean): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}
