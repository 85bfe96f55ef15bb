import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Request, h2Via } from '../helpers/h2-client.js';
import { rssBytes } from '../helpers/process-memory.js';
import { FLAG, frame, getBlock, indexed, literal, rawH2, TYPE } from '../helpers/h2-frames.js';
import { findCanary, PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

// The HTTP/2 attacks of recent years, sent raw at keyswap's MITM: each must end in a refused stream or a
// closed session, with keyswap still serving, its memory bounded, and nothing forwarded.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const rss = (): number => rssBytes(h.child.pid as number);


/** keyswap still answers a fresh HTTP/2 connection. */
async function stillServes(): Promise<void> {
  const session = await h2Via(h, 'api.example.test');
  const r = await h2Request(session, { ':path': '/v1/echo', authorization: `Bearer ${PLACEHOLDER}` });
  expect(r.status).toBe(200);
  session.close();
}

describe('HTTP/2 limits against a live keyswap', () => {
  it('advertises its limits: 100 concurrent streams, a 16 KiB header list, no push', async () => {
    const session = await h2Via(h, 'api.example.test');
    // nghttp2 assumes 100 streams until the peer's SETTINGS arrive: wait for keyswap's own.
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
    expect(session.remoteSettings.maxHeaderListSize).toBe(16 * 1024);
    expect(session.remoteSettings.enablePush).toBe(false);
    session.close();
  });

  it('a header list over 16 KiB is refused on its stream; the session and keyswap carry on', async () => {
    const session = await h2Via(h, 'api.example.test');
    const before = h.upstream.requests.length;
    const big = await h2Request(session, { ':path': '/v1/echo', 'x-big': 'a'.repeat(20_000) });
    expect(big.status === 431 || big.rstCode !== 0).toBe(true);
    expect(h.upstream.requests.length).toBe(before);
    await stillServes();
  });

  it('CONTINUATION flood: a header block that never ends is cut, memory bounded', async () => {
    const before = rss();
    const { socket, frames, closed } = await rawH2(h, 'api.example.test');
    socket.write(frame(TYPE.HEADERS, FLAG.END_STREAM, 1, getBlock('api.example.test')));
    const filler = literal('x-flood', 'a'.repeat(100));
    let sent = 0;
    let open = true;
    void closed.then(() => { open = false; });
    // Bounded: 20,000 frames (2 MB of headers) or the connection closing, whichever comes first.
    while (open && sent < 20_000) {
      if (!socket.write(frame(TYPE.CONTINUATION, 0, 1, filler))) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
      sent++;
      if (sent % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))])).toBe(true);
    expect(rss() - before).toBeLessThan(64 * 1024 * 1024);
    expect(h.child.exitCode).toBeNull();
    await stillServes();
  });

  it('HPACK bomb: one 4 KB entry referenced 4,000 times (16 MB decoded) is refused, nothing forwarded', async () => {
    const before = rss();
    const upstreamBefore = h.upstream.requests.length;
    const { socket, frames, closed } = await rawH2(h, 'api.example.test');
    const refs = Buffer.alloc(4_000, indexed(62)[0]);
    const block = Buffer.concat([getBlock('api.example.test'), literal('x-bomb', 'b'.repeat(4_000), true), refs]);
    socket.write(frame(TYPE.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, block));
    const refused = await waitFor(() => frames.some((f) => (f.type === TYPE.RST_STREAM && f.stream === 1) || f.type === TYPE.GOAWAY || (f.type === TYPE.HEADERS && f.stream === 1)), 10_000);
    expect(refused).toBe(true);
    const answer = frames.find((f) => f.type === TYPE.HEADERS && f.stream === 1);
    // An answer, if any, is a refusal: never the upstream's 200.
    if (answer !== undefined) expect(answer.payload[0]).not.toBe(0x88);
    expect(h.upstream.requests.length).toBe(upstreamBefore);
    expect(rss() - before).toBeLessThan(64 * 1024 * 1024);
    socket.destroy();
    await closed;
    await stillServes();
  });

  it('rapid reset: 3,000 streams opened and reset at once leave keyswap serving, memory bounded', async () => {
    const before = rss();
    const session = await h2Via(h, 'api.example.test');
    let refusedSession = false;
    session.on('goaway', () => { refusedSession = true; });
    for (let i = 0; i < 3_000 && !session.destroyed && !refusedSession; i++) {
      try {
        const s = session.request({ ':path': `/v1/echo?rr=${i}`, authorization: `Bearer ${PLACEHOLDER}` });
        s.on('error', () => {});
        s.close(8);
      } catch {
        break;
      }
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    session.destroy();
    expect(h.child.exitCode).toBeNull();
    expect(rss() - before).toBeLessThan(64 * 1024 * 1024);
    await stillServes();
  });

  it('no secret in any log or audit line', () => {
    expect(findCanary(h)).toEqual([]);
  });
});
