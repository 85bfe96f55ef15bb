import { describe, expect, it } from 'vitest';
import { endToEndPairs, firstDuplicate, flatten, mediaType, requestFraming, setHeader, type HeaderPair } from '../../src/wire/index.js';

// Policy and the upstream request are both built from these readings of rawHeaders: an edge read differently
// here is a request keyswap judges one way and forwards another.

describe('endToEndPairs', () => {
  it('lower-cases names, keeps order and every repeat, and drops hop-by-hop headers whatever their case', () => {
    const raw = ['Host', 'a.test', 'Authorization', 'one', 'KEEP-ALIVE', '5', 'Proxy-Authorization', 'Basic x', 'authorization', 'two', 'TE', 'trailers', 'Expect', '100-continue', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'HTTP2-Settings', 'x'];
    expect(endToEndPairs(raw)).toEqual([['host', 'a.test'], ['authorization', 'one'], ['authorization', 'two']]);
  });

  it('drops what any Connection header names as hop-by-hop, tokens trimmed and case-folded', () => {
    const raw = ['Connection', 'close, X-Trace ', 'X-Trace', '1', 'connection', 'x-other', 'X-Other', '2', 'X-Kept', '3'];
    expect(endToEndPairs(raw)).toEqual([['x-kept', '3']]);
  });

  it('a name without a value (an odd-length list) is not a header', () => {
    expect(endToEndPairs(['X-A', '1', 'X-B'])).toEqual([['x-a', '1']]);
  });

  it('flatten turns pairs back into the flat list http.request takes', () => {
    expect(flatten([['a', '1'], ['a', '2']])).toEqual(['a', '1', 'a', '2']);
  });
});

describe('requestFraming', () => {
  it.each([
    ['no framing header', [], { kind: 'none' }],
    ['Content-Length: 0', ['Content-Length', '0'], { kind: 'none' }],
    ['a length, with spaces around it', ['content-length', ' 42 '], { kind: 'length', bytes: 42 }],
    ['fifteen digits', ['Content-Length', '999999999999999'], { kind: 'length', bytes: 999_999_999_999_999 }],
    ['chunked, in any case', ['TRANSFER-ENCODING', ' Chunked '], { kind: 'chunked' }],
  ] as const)('%s', (_name, raw, framing) => {
    expect(requestFraming(raw)).toEqual(framing);
  });

  it.each([
    ['two lengths, even equal', ['Content-Length', '5', 'content-length', '5']],
    ['two transfer codings', ['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked']],
    ['a length beside chunked', ['Content-Length', '5', 'Transfer-Encoding', 'chunked']],
    ['chunked after another coding', ['Transfer-Encoding', 'gzip, chunked']],
    ['a coding other than chunked', ['Transfer-Encoding', 'identity']],
    ['a negative length', ['Content-Length', '-1']],
    ['an exponent', ['Content-Length', '1e3']],
    ['hexadecimal', ['Content-Length', '0x10']],
    ['sixteen digits (past what a double holds exactly)', ['Content-Length', '1234567890123456']],
    ['an empty length', ['Content-Length', '']],
    ['a list of lengths', ['Content-Length', '5, 5']],
  ])('%s is ambiguous', (_name, raw) => {
    expect(requestFraming(raw)).toEqual({ kind: 'ambiguous' });
  });
});

describe('the smaller readings', () => {
  it('firstDuplicate names the first singleton seen twice, ignoring repeats of others', () => {
    const pairs: HeaderPair[] = [['accept', 'a'], ['accept', 'b'], ['host', 'x'], ['authorization', '1'], ['host', 'y'], ['authorization', '2']];
    expect(firstDuplicate(pairs, new Set(['host', 'authorization']))).toBe('host');
    expect(firstDuplicate(pairs, new Set(['user-agent']))).toBeNull();
  });

  it('mediaType is the lower-cased type without parameters, or null for nothing', () => {
    expect(mediaType(' Application/JSON ; charset=utf-8')).toBe('application/json');
    expect(mediaType(undefined)).toBeNull();
    expect(mediaType('; charset=utf-8')).toBeNull();
  });

  it('setHeader leaves one header of that name, last, and keeps the others in order', () => {
    const headers: HeaderPair[] = [['x-api-key', 'old'], ['accept', '*/*'], ['x-api-key', 'older']];
    setHeader(headers, 'x-api-key', 'new');
    expect(headers).toEqual([['accept', '*/*'], ['x-api-key', 'new']]);
  });
});
