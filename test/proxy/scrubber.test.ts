import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { echoForms, EchoBlocked, Scrubber, scrubNeedles } from '../../src/proxy/scrubber.js';

// proxy/scrubber.ts on its own (issue #17): the echo forms, and the streaming holdback, close to their cause.
const SECRET = 'sk-live-Zq8/+Wm3!x_secret-0042';
const PH = 'sk-PLACEHOLDER-0123456789ABCDEFGHIJ';
const scrubber = (mode: 'redact' | 'block' = 'redact') => new Scrubber(scrubNeedles([{ secretName: 'K', placeholder: PH, forms: echoForms(SECRET), mode }]));

async function streamed(s: Scrubber, chunks: readonly Buffer[]): Promise<{ out: Buffer; pieces: Buffer[] }> {
  const t = s.stream();
  const src = new PassThrough();
  const pieces: Buffer[] = [];
  t.on('data', (c: Buffer) => pieces.push(c));
  const done = new Promise<void>((resolve, reject) => {
    t.on('end', resolve);
    t.on('error', reject);
  });
  src.pipe(t);
  for (const c of chunks) src.write(c);
  src.end();
  await done;
  return { out: Buffer.concat(pieces), pieces };
}

describe('echoForms', () => {
  it('finds the secret base64-encoded inside Basic credentials whatever the user name’s length', () => {
    const forms = echoForms(SECRET);
    for (let n = 0; n < 9; n++) {
      const blob = Buffer.from(`${'u'.repeat(n)}:${SECRET}`).toString('base64');
      expect(forms.some((f) => blob.includes(f)), `user of ${n} bytes`).toBe(true);
    }
  });

  it('covers percent, JSON and HTML escapings as common encoders write them', () => {
    const forms = echoForms(SECRET);
    for (const echo of [encodeURIComponent(SECRET), JSON.stringify(SECRET).slice(1, -1).replaceAll('/', '\\/'), SECRET.replaceAll('&', '&amp;')]) expect(forms).toContain(echo);
  });

  it('drops forms shorter than 8 bytes: replacing every short string would corrupt bodies and protect nothing', () => {
    expect(echoForms('abc')).toEqual([]);
    expect(echoForms('abcdefgh')).toContain('abcdefgh');
  });
});

describe('Scrubber.stream: the holdback', () => {
  const body = Buffer.from(`{"echo":"${SECRET}","b64":"${Buffer.from(SECRET).toString('base64')}","tail":"ok"}`, 'latin1');
  const whole = scrubber().scrubText(body.toString('latin1'));

  it('splitting the body at every byte gives the same output as scrubbing it whole, and no piece carries the secret', async () => {
    for (let cut = 1; cut < body.length; cut++) {
      const { out, pieces } = await streamed(scrubber(), [body.subarray(0, cut), body.subarray(cut)]);
      expect(out.toString('latin1'), `cut at ${cut}`).toBe(whole);
      for (const p of pieces) expect(p.toString('latin1')).not.toContain(SECRET);
    }
  });

  it('one byte at a time: the same output', async () => {
    const { out } = await streamed(scrubber(), [...body].map((b) => Buffer.from([b])));
    expect(out.toString('latin1')).toBe(whole);
    expect(whole).not.toContain(SECRET);
    expect(whole).toContain(PH);
  });

  it('a body with no echo passes through byte for byte', async () => {
    const plain = Buffer.from('nothing to see here, not even sk-live-Zq8 alone'.repeat(50));
    const { out } = await streamed(scrubber(), [plain.subarray(0, 100), plain.subarray(100)]);
    expect(out.equals(plain)).toBe(true);
  });

  it('response_scrub: block fails the stream with EchoBlocked instead of replacing', async () => {
    await expect(streamed(scrubber('block'), [body])).rejects.toBeInstanceOf(EchoBlocked);
    expect(() => scrubber('block').scrubText(SECRET)).toThrow(EchoBlocked);
  });
});
