import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { compileTargets, EchoBlocked, Scrubber, valueForms } from '../../src/scrub/index.js';
import { MAX_SPELLING } from '../../src/scrub/spellings.js';
import { leaksIn } from '../helpers/secret-forms.js';

// scrub/ on its own (issue #32): an echo is found character by character, whatever spelling each character has.
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCY=<>&\'"é';
const PH = 'sk-PLACEHOLDER-0123456789ABCDEFGHIJ';
const scrubber = (mode: 'redact' | 'block' = 'redact', value = SECRET, placeholder = PH) => new Scrubber(compileTargets([{ secretName: 'K', placeholder, values: [value], mode }]));
const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const scrubbed = (text: string, s = scrubber()): string => Buffer.from(s.scrubText(utf8(text)), 'latin1').toString('utf8');

/** One character spelled in a family. */
const spell = {
  jsonLower: (c: string) => [...Buffer.from(c, 'utf16le')].length === 2 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : [...c].map((u) => `\\u${u.charCodeAt(0).toString(16)}`).join(''),
  jsonUpper: (c: string) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
  htmlDec: (c: string) => `&#${c.codePointAt(0)};`,
  htmlHex: (c: string) => `&#x${(c.codePointAt(0) as number).toString(16).toUpperCase()};`,
  htmlZeros: (c: string) => `&#x000${(c.codePointAt(0) as number).toString(16)};`,
  percent: (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
};

describe('the four encoders that got a secret back (issue #32), and their kin', () => {
  it.each([
    ['Gson (HTML-safe): = as \\u003d', SECRET.replace('=', '\\u003d')],
    ['.NET System.Text.Json: + as \\u002B', SECRET.replace('+', '\\u002B')],
    ['Go html/template: + as &#43;', SECRET.replace('+', '&#43;')],
    ['ASP.NET Core HtmlEncoder: + as &#x2B;', SECRET.replace('+', '&#x2B;')],
    ["Python html.escape: ' as &#x27;", SECRET.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace("'", '&#x27;').replace('"', '&quot;')],
    ['Go encoding/json: < > & as \\u003c \\u003e \\u0026', SECRET.replace('<', '\\u003c').replace('>', '\\u003e').replace('&', '\\u0026').replace('"', '\\"')],
    ['PHP json_encode: \\/ and é as \\u00e9', SECRET.replace('/', '\\/').replace('"', '\\"').replace('é', '\\u00e9')],
    ['Ruby ERB::Util: &#39; and &quot;', SECRET.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace("'", '&#39;').replace('"', '&quot;')],
  ])('%s comes back as the placeholder', (_name, echo) => {
    const out = scrubbed(`{"you_sent":"${echo}"} <p>Invalid key: ${echo}</p>`);
    expect(out).toBe(`{"you_sent":"${PH}"} <p>Invalid key: ${PH}</p>`);
  });
});

describe('each character in any spelling, independently', () => {
  it.each(Object.entries(spell))('every character spelled %s', (_family, f) => {
    const echo = [...SECRET].map(f).join('');
    expect(scrubbed(`x ${echo} y`)).toMatch(new RegExp(`^x \\S*PLACEHOLDER\\S* y$`));
  });

  it('mixed: each character in the next family in turn, inside one echo', () => {
    const families = Object.values(spell);
    const echo = [...SECRET].map((c, i) => (i % (families.length + 1) === families.length ? c : (families[i % (families.length + 1)] as (c: string) => string)(c))).join('');
    expect(scrubbed(`[${echo}]`)).toBe(`[${PH}]`);
  });

  it('JSON one-letter escapes, \\/, \\xHH, \\U and \\u{…}, surrogate pairs for a character outside the BMP', () => {
    const value = 'tab\there/slash-new\nline-😀-end-Zq8';
    const echo = 'tab\\there\\/slash-new\\nline-\\ud83d\\ude00-end-\\x5Aq8';
    expect(scrubbed(`"${echo}"`, scrubber('redact', value))).toBe(`"${PH}"`);
    expect(scrubbed(`"${'tab\\there\\/slash-new\\nline-\\U0001F600-end-\\u{5a}q8'}"`, scrubber('redact', value))).toBe(`"${PH}"`);
  });

  it('HTML named references, with and without the semicolon browsers forgive', () => {
    const value = 'a+b=c/d<e>f&g"h';
    expect(scrubbed('a&plus;b&equals;c&sol;d&lt;e&gt;f&amp;g&quot;h', scrubber('redact', value))).toBe(PH);
    expect(scrubbed('a+b=c/d&lte&gtf&ampg"h', scrubber('redact', value))).toBe(PH);
  });

  it('form encoding: + for a space where a secret holds one', () => {
    expect(scrubbed('v=open+sesame+2024%21&x=1', scrubber('redact', 'open sesame 2024!'))).toBe(`v=${PH}&x=1`);
  });

  it.each([
    ['a URL-encoded URL holding percent escapes (%252B, Django’s login redirect)', encodeURIComponent(encodeURIComponent(SECRET))],
    ['JSON inside JSON (\\u003d, \\\\)', JSON.stringify(JSON.stringify(SECRET).slice(1, -1).replace('=', '\\u003d')).slice(1, -1)],
    ['html/template inside Go’s JSON (\\u0026#43;)', SECRET.replace('+', '\\u0026#43;').replace('=', '\\u0026#61;')],
    ['HTML-escaped HTML (&amp;#43;)', SECRET.replace('+', '&amp;#43;').replace('<', '&amp;lt;')],
    ['a URL-encoded JSON string (%5Cu002B)', SECRET.replace('+', encodeURIComponent('\\u002B'))],
    ['a URL-encoded HTML reference (%26%2343%3B)', SECRET.replace('+', encodeURIComponent('&#43;'))],
  ])('two layers: %s', (_name, echo) => {
    expect(scrubbed(`[${echo}]`)).toBe(`[${PH}]`);
  });

  it('CSS escapes (\\2b and one whitespace, as Go’s html/template writes in a style) and quoted-printable (=2B)', () => {
    const value = 'css+and=qp/secret-0042';
    expect(scrubbed(`a{content:"${value.replace('+', '\\2b ').replace('/', '\\00002f')}"}`, scrubber('redact', value))).toBe(`a{content:"${PH}"}`);
    expect(scrubbed(`body: ${value.replace('=', '=3D').replace('+', '=2B')}`, scrubber('redact', value))).toBe(`body: ${PH}`);
  });

  it('a header value’s latin1 bytes (é as 0xE9), raw, base64 and hex: what an upstream reflecting the header bytes echoes', () => {
    const value = 'clé-secrète-0123456789';
    const bytes = Buffer.from(value, 'latin1');
    const s = scrubber('redact', value);
    for (const echo of [bytes.toString('latin1'), bytes.toString('base64'), bytes.toString('hex')]) expect(s.scrubText(echo), echo).toBe(PH);
  });

  it('hex of the secret bytes, in either case', () => {
    const hex = Buffer.from(SECRET, 'utf8').toString('hex');
    expect(scrubbed(`${hex} ${hex.toUpperCase()}`)).toBe(`${PH} ${PH}`);
  });

  it('base64 at every alignment, standard and URL-safe, with one of its characters escaped as Gson writes it', () => {
    for (let k = 0; k < 3; k++) {
      const blob = Buffer.concat([Buffer.alloc(k, 0x41), Buffer.from(SECRET, 'utf8')]).toString('base64');
      for (const text of [blob, Buffer.from(blob, 'base64').toString('base64url'), blob.replaceAll('=', '\\u003d').replaceAll('+', '\\u002b')]) {
        expect(leaksIn(utf8(scrubbed(text)), SECRET), `alignment ${k}: ${text}`).toEqual([]);
      }
    }
  });

  it('a secret that itself looks like an escape (%41, \\n, &lt;) is found raw, escaped, and half and half', () => {
    const value = 'ab%41cd\\nef&lt;gh+ij';
    for (const echo of [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), 'ab%41cd\\\\nef&lt;gh\\u002bij', 'ab%2541cd\\nef&amp;lt;gh+ij']) {
      expect(scrubbed(`<${echo}>`, scrubber('redact', value)), echo).toBe(`<${PH}>`);
    }
  });

  it('bytes outside an echo are never changed, and a near miss is left alone', () => {
    const text = `{"a":"${SECRET.slice(0, -1)}","b":"caf\\u00e9 &amp; cr%C3%A8me"}`;
    expect(scrubbed(text)).toBe(text);
  });

  it('the placeholder is written in the echo’s family where it used one: HTML-escaped, percent-encoded; raw otherwise', () => {
    const ph = 'sk-PLACEHOLDER-a&b<c+d/0123456789';
    const s = () => scrubber('redact', SECRET, ph);
    expect(scrubbed(SECRET.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace("'", '&#39;').replace('"', '&quot;'), s())).toBe('sk-PLACEHOLDER-a&amp;b&lt;c+d/0123456789');
    expect(scrubbed(encodeURIComponent(SECRET), s())).toBe(encodeURIComponent(ph));
    expect(scrubbed(SECRET, s())).toBe(ph);
  });

  it(`a numeric reference padded past ${MAX_SPELLING} bytes is read as its characters, not decoded (the bound the hold-back rests on)`, () => {
    const padded = SECRET.replace('+', `&#x${'0'.repeat(MAX_SPELLING)}2b;`);
    expect(scrubbed(padded)).toBe(padded);
  });
});

describe('streaming: the hold-back', () => {
  const body = Buffer.from(`{"echo":"${SECRET.replace('+', '\\u002B')}","b64":"${Buffer.from(SECRET).toString('base64')}","html":"${[...SECRET].map(spell.htmlHex).join('')}","tail":"ok"}`, 'utf8');
  const whole = Buffer.from(scrubber().scrubText(body.toString('latin1')), 'latin1');

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

  it('splitting the body at every byte gives the same output as scrubbing it whole, and no piece carries a form', async () => {
    expect(leaksIn(whole.toString('latin1'), SECRET)).toEqual([]);
    for (let cut = 1; cut < body.length; cut++) {
      const { out, pieces } = await streamed(scrubber(), [body.subarray(0, cut), body.subarray(cut)]);
      expect(out.equals(whole), `cut at ${cut}`).toBe(true);
      for (const p of pieces) expect(p.toString('latin1')).not.toContain(utf8(SECRET));
    }
  });

  it('one byte at a time: the same output', async () => {
    const { out } = await streamed(scrubber(), [...body].map((b) => Buffer.from([b])));
    expect(out.equals(whole)).toBe(true);
  });

  it('a chunk that cannot begin an echo is released whole at once (an SSE event is never held for the next)', () => {
    const b = scrubber().inline();
    const event = Buffer.from('data: {"delta":"hello \\n world \\u00e9 &amp; 100%"}\n\n');
    expect(b.push(event).equals(event)).toBe(true);
  });

  it('an escape cut by the chunk’s end is held until it can be read, then released or replaced', () => {
    const b = scrubber().inline();
    const first = b.push(Buffer.from('abc &#x4'));
    expect(first.toString('latin1')).toBe('abc ');
    expect(b.push(Buffer.from('1; def')).toString('latin1')).toBe('&#x41; def');
    expect(b.end().length).toBe(0);
  });

  it('what is held back is bounded by the longest spelling of the longest form, whatever the upstream sends', () => {
    const b = scrubber().inline();
    // Every byte continues a partial echo as long as the secret allows, then breaks it.
    const prefix = [...SECRET.slice(0, -2)].map(spell.htmlZeros).join('');
    let released = 0;
    released += b.push(Buffer.from(`x${prefix}`, 'utf8')).length;
    const held = 1 + Buffer.byteLength(prefix) - released;
    expect(held).toBeLessThanOrEqual(Buffer.byteLength(SECRET) * MAX_SPELLING);
    expect(b.push(Buffer.from('!')).length + released).toBe(2 + Buffer.byteLength(prefix));
  });

  it('response_scrub: block fails the stream with EchoBlocked instead of replacing', async () => {
    await expect(streamed(scrubber('block'), [body])).rejects.toBeInstanceOf(EchoBlocked);
    expect(() => scrubber('block').scrubText(utf8(SECRET))).toThrow(EchoBlocked);
  });

  it('a degenerate secret (aaaa…) in a flood of its own character: overlapping echoes are replaced as one, in bounded work', () => {
    const s = scrubber('redact', 'a'.repeat(64));
    expect(s.scrubText(`x&#97;${'a'.repeat(10_000)}y`)).toBe(`x${PH}y`);
    expect(s.scrubText('a'.repeat(63))).toBe('a'.repeat(63));
  });
});

describe('value forms', () => {
  it('drops values shorter than 8 bytes: replacing every short string would corrupt bodies and protect nothing', () => {
    expect(valueForms('abc')).toEqual([]);
    expect(valueForms('abcdefgh').map((f) => f.bytes.toString('latin1'))).toContain('abcdefgh');
  });
});
