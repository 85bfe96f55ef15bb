import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventData, sseEvents, withData } from '../../src/wire/index.js';

/*
 * wire/sse.ts, as the MCP tool policy's answer filter uses it: however the bytes are cut into chunks, every event
 * is handed over whole (CRLF, LF or CR line ends, a CRLF split across chunks), and what is not rewritten passes byte
 * for byte.
 */
async function run(chunks: readonly Buffer[], rewrite: (e: Buffer) => Buffer = (e) => e): Promise<{ out: Buffer; events: string[] }> {
  const events: string[] = [];
  const t = sseEvents((e) => { events.push(e.toString('latin1')); return rewrite(e); }, 1 << 20);
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => { t.on('end', resolve); t.on('error', reject); });
  for (const c of chunks) t.write(c);
  t.end();
  await done;
  return { out: Buffer.concat(out), events };
}

const eol = fc.constantFrom('\n', '\r\n', '\r');
const line = fc.oneof(fc.constant('data: {"a":1}'), fc.constant('event: message'), fc.constant(': keep-alive'), fc.constant('id: 7'), fc.string({ maxLength: 20 }).map((s) => `data: ${s.replace(/[\r\n]/g, '')}`));
const stream = fc.array(fc.tuple(fc.array(fc.tuple(line, eol), { minLength: 1, maxLength: 4 }), eol), { maxLength: 6 })
  .map((evs) => evs.map(([lines, end]) => `${lines.map(([l, e]) => `${l}${e}`).join('')}${end}`).join(''));

describe('sseEvents', () => {
  it('hands over the same events, and passes the same bytes, however the stream is cut (2,000 cases)', async () => {
    await fc.assert(fc.asyncProperty(stream, fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 40 }), async (text, cuts) => {
      const bytes = Buffer.from(text, 'latin1');
      const whole = await run([bytes]);
      const chunks: Buffer[] = [];
      let at = 0;
      for (const c of cuts) {
        if (at >= bytes.length) break;
        chunks.push(bytes.subarray(at, at + c));
        at += c;
      }
      if (at < bytes.length) chunks.push(bytes.subarray(at));
      const cut = await run(chunks);
      expect(cut.out.equals(bytes)).toBe(true);
      expect(whole.out.equals(bytes)).toBe(true);
      expect(cut.events).toEqual(whole.events);
    }), { numRuns: 2000, seed: 42 });
  });

  it('a rewritten event keeps its other fields; data lines are joined as a reader joins them', async () => {
    const { out } = await run([Buffer.from('event: message\r\nid: 3\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: ping\n\n')], (e) => (eventData(e) === null ? e : withData(e, '{"b":2}')));
    expect(out.toString()).toBe('event: message\nid: 3\ndata: {"b":2}\n\n: ping\n\n');
    expect(eventData(Buffer.from('data: {"a":\ndata:1}\n\n'))).toBe('{"a":\n1}');
  });
});
