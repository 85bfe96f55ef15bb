import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { endAfter, relay } from '../../src/proxy/relay.js';

// relay() carries every request and response body; these pin its contract where a change would fail here first,
// not as a hung or half-sent transfer in an end-to-end test.

/** A sink that keeps what it was given. */
function collector(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  return Object.assign(w, { text: () => Buffer.concat(chunks).toString() });
}

/** The relay's outcome, with every call of `done` it made once the streams have had their say. */
async function outcome(streams: Parameters<typeof relay>[0]): Promise<(Error | null)[]> {
  const calls: (Error | null)[] = [];
  await new Promise<void>((resolve) => relay(streams, (err) => { calls.push(err); resolve(); }));
  // Let any late close or error of the other streams arrive: a second `done` would show up here.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  return calls;
}

describe('relay', () => {
  it('carries every byte through the middle streams and reports a clean end once', async () => {
    const sink = collector();
    const upper = new Transform({ transform(c: Buffer, _e, done) { done(null, c.toString().toUpperCase()); } });
    const calls = await outcome([Readable.from(['ab', 'cd', 'ef']), upper, new PassThrough(), sink]);
    expect(calls).toEqual([null]);
    expect(sink.text()).toBe('ABCDEF');
  });

  it('reports the end only once the sink has taken the last byte, not when the source has given it', async () => {
    const sink = new Writable({ write(_c, _e, done) { setImmediate(done); } });
    const sinkDoneAtEnd = await new Promise<boolean>((resolve) => relay([Readable.from(['a', 'b', 'c']), sink], () => resolve(sink.writableFinished)));
    expect(sinkDoneAtEnd).toBe(true);
  });

  it('an error in a middle stream is reported once, and every stream is destroyed', async () => {
    const source = new PassThrough();
    const failing = new Transform({ transform(_c, _e, done) { done(new Error('echo blocked')); } });
    const sink = collector();
    const pending = outcome([source, failing, sink]);
    source.write('x');
    const calls = await pending;
    expect(calls).toHaveLength(1);
    expect(calls[0]?.message).toBe('echo blocked');
    expect([source.destroyed, failing.destroyed, sink.destroyed]).toEqual([true, true, true]);
  });

  it('a source closed before its end (a reset agent) is an error, not a clean end, and the sink is destroyed', async () => {
    const source = new PassThrough();
    const sink = collector();
    const pending = outcome([source, sink]);
    source.write('half a body');
    source.destroy();
    const calls = await pending;
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBeInstanceOf(Error);
    expect((calls[0] as NodeJS.ErrnoException).code).toBe('ERR_STREAM_PREMATURE_CLOSE');
    expect(sink.destroyed).toBe(true);
  });

  it('a sink that fails (a reset upstream) destroys the source, so nothing keeps reading for it', async () => {
    const source = new PassThrough();
    const sink = new Writable({ write(_c, _e, done) { done(new Error('upstream reset')); } });
    const pending = outcome([source, sink]);
    source.write('x');
    const calls = await pending;
    expect(calls.map((e) => e?.message)).toEqual(['upstream reset']);
    expect(source.destroyed).toBe(true);
  });
});

describe('endAfter', () => {
  it('passes data at once but ends only after the promise settles', async () => {
    let release!: () => void;
    const gate = endAfter(new Promise<void>((r) => { release = r; }));
    const seen: string[] = [];
    let ended = false;
    gate.on('data', (c: Buffer) => seen.push(c.toString()));
    gate.on('end', () => { ended = true; });
    gate.end('response body');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['response body']);
    expect(ended).toBe(false);
    release();
    await new Promise<void>((r) => gate.once('end', () => r()));
    expect(ended).toBe(true);
  });
});
