import { describe, expect, it } from 'vitest';
import { applyPlacements, InvalidRendering, renderSecret, type RequestParts } from '../../src/inject/index.js';
import { PH_A, PH_BASIC, PH_Q, SECRET_A, SECRET_BASIC, SECRET_Q, secret, binding } from '../policy/fixtures.js';

const parts = (over: Partial<RequestParts>): RequestParts => ({ headers: [], path: '/', query: '', ...over });

describe('applyPlacements()', () => {
  it('replaces the whole site header with the rendering and leaves other headers byte-exact', () => {
    const p = parts({ headers: [['authorization', `Bearer ${PH_A}`], ['x-trace', PH_A]] });
    applyPlacements(p, [{ secret: SECRET_A, site: SECRET_A.sites[0], text: 'Bearer real' }]);
    expect(p.headers).toEqual([['authorization', 'Bearer real'], ['x-trace', PH_A]]);
  });

  it('replaces the query value in place and never adds a duplicate parameter', () => {
    const p = parts({ query: `a=1&key=${PH_Q}&b=%20x` });
    applyPlacements(p, [{ secret: SECRET_Q, site: SECRET_Q.sites[0], text: 'r&e=al' }]);
    expect(p.query).toBe('a=1&key=r%26e%3Dal&b=%20x');
    expect(p.query.match(/key=/g)).toHaveLength(1);
  });

  it('re-encodes Basic credentials with the placeholder replaced inside them', () => {
    const p = parts({ headers: [['authorization', `Basic ${Buffer.from(`bob:${PH_BASIC}`).toString('base64')}`]] });
    applyPlacements(p, [{ secret: SECRET_BASIC, site: SECRET_BASIC.sites[0], text: 'tok' }]);
    expect(p.headers[0]?.[1]).toBe(`Basic ${Buffer.from('bob:tok').toString('base64')}`);
  });

  it('refuses a rendering that would split the request (CR/LF in a header value)', () => {
    const p = parts({ headers: [['authorization', `Bearer ${PH_A}`]] });
    expect(() => applyPlacements(p, [{ secret: SECRET_A, site: SECRET_A.sites[0], text: 'Bearer x\r\nX-Evil: 1' }])).toThrow(InvalidRendering);
  });
});

describe('renderSecret()', () => {
  it.each([
    ['{NAME} is replaced', 'Bearer {A}', 'v', 'Bearer v'],
    ['{secret} is an alias', 'token {secret}', 'v', 'token v'],
    ['braces inside the value are never expanded again', 'Bearer {A}', '{A}{secret}', 'Bearer {A}{secret}'],
    ['every occurrence is replaced', '{A}:{A}', 'v', 'v:v'],
  ])('%s', (_n, format, value, expected) => {
    const s = secret('A', PH_A, { type: 'header', header: 'authorization', render: { kind: 'format', format } }, [binding('x.test')]);
    expect(renderSecret(s, s.sites[0], new Map([['A', value]]), 0)).toBe(expected);
  });
});
