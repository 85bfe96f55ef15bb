import { describe, expect, it } from 'vitest';
import { decodeBasic, encodeBasic } from '../../src/wire/index.js';

// One decoding of Basic for the scanner, the injector and proxy clients: where it is lenient, an upstream that is
// strict reads a different credential than keyswap judged.

describe('decodeBasic', () => {
  it('splits at the first colon; the scheme is case-insensitive', () => {
    expect(decodeBasic(`bAsIc ${Buffer.from('user:pa:ss').toString('base64')}`)).toEqual({ user: 'user', password: 'pa:ss', decoded: 'user:pa:ss' });
    expect(decodeBasic(`Basic ${Buffer.from('token-only').toString('base64')}`)).toEqual({ user: 'token-only', password: '', decoded: 'token-only' });
  });

  it.each([
    ['another scheme', 'Bearer dXNlcjpwdw=='],
    ['a junk character inside', 'Basic dXNl!cjpwdw=='],
    ['missing padding', 'Basic dXNlcjpwdw'],
    ['base64url', `Basic ${Buffer.from('u:\xfb\xff').toString('base64url')}`],
    ['too short to be Basic', 'Basic'],
  ])('%s is not Basic', (_name, value) => {
    expect(decodeBasic(value)).toBeNull();
  });

  it('round-trips any byte through latin1, whatever charset the agent meant', () => {
    const bytes = Buffer.from([0x75, 0x3a, 0xc3, 0xa9, 0xff, 0x00]);
    const decoded = decodeBasic(`Basic ${bytes.toString('base64')}`);
    expect(decoded?.password).toBe('\u00c3\u00a9\u00ff\u0000');
    expect(encodeBasic(decoded?.decoded ?? '')).toBe(`Basic ${bytes.toString('base64')}`);
  });
});
