import { describe, expect, it } from 'vitest';
import { isLoopbackPeer } from '../../src/wire/index.js';

// The https:// absolute form is plaintext on the agent's leg: only a peer on this machine may use it (#19).
describe('isLoopbackPeer(): which peer addresses are this machine', () => {
  it.each([['127.0.0.1'], ['127.8.9.10'], ['::1'], ['::ffff:127.0.0.1'], ['::FFFF:127.0.0.2']])('%s is', (a) => {
    expect(isLoopbackPeer(a)).toBe(true);
  });
  it.each([['192.0.2.2'], ['10.0.0.1'], ['::ffff:10.0.0.1'], ['fd00::2'], ['::'], ['0.0.0.0'], ['127.0.0.1.evil'], ['1270.0.0.1'], [undefined]])('%s is not', (a) => {
    expect(isLoopbackPeer(a)).toBe(false);
  });
});
