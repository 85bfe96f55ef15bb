import { describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/config/index.js';
import { evaluateTemplate } from '../../src/inject/index.js';

const run = (t: string, values: Record<string, string>, nowMs = 0): string => evaluateTemplate(parseTemplate(t), new Map(Object.entries(values)), nowMs);

describe('the template language', () => {
  it('Basic from two composed secrets', () => {
    expect(run("Basic {{ (U + ':' + P) | b64encode }}", { U: 'user', P: 'pass' })).toBe(`Basic ${Buffer.from('user:pass').toString('base64')}`);
  });
  it('hmac_sha256 matches RFC 4231 test case 2', () => {
    expect(run("{{ hmac_sha256(K, 'what do ya want for nothing?') }}", { K: 'Jefe' })).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
  it('totp matches the RFC 6238 SHA-1 vector at T=59 (6 digits)', () => {
    // base32 of the ASCII secret "12345678901234567890"
    expect(run('{{ totp(S) }}', { S: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' }, 59_000)).toBe('287082');
  });
  it('urlencode and sha256', () => {
    expect(run("{{ A | urlencode }}|{{ 'abc' | sha256 }}", { A: 'a b&c' })).toBe('a%20b%26c|ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it.each([
    ['{{ A.b }}', "unexpected '.'"],
    ['{{ A | upper }}', 'unknown filter'],
    ['{{ eval(A) }}', 'unknown function eval'],
    ['{{ hmac_sha256(A) }}', 'hmac_sha256 takes 2 argument(s), got 1'],
    ['{{ A ', 'never closed'],
    ['no holes', 'has no {{ expression }}'],
  ])('rejects %s', (t, message) => {
    expect(() => parseTemplate(t)).toThrow(message);
  });
});
