import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ClientSpec } from '../../src/config/index.js';
import { authenticate } from '../../src/proxy/client-auth.js';
import { encodeBasic } from '../../src/wire/index.js';

const TOKEN = 'ks_token-of-agent-one';
const agent: ClientSpec = { name: 'agent1', tokenSha256: createHash('sha256').update(TOKEN).digest('hex'), spiffeId: null, secrets: new Set(['A']), expiresAtMs: 10_000 };
const clients = new Map([['agent1', agent]]);

describe('authenticate (Proxy-Authorization against clients:)', () => {
  it('without a clients: section every local caller is accepted, as no client', () => {
    expect(authenticate(undefined, null, 0)).toEqual({ ok: true, client: null });
  });

  it('the right name and token before expiry is that client', () => {
    expect(authenticate(encodeBasic(`agent1:${TOKEN}`), clients, 9_999)).toEqual({ ok: true, client: agent });
  });

  it.each([
    ['no header', undefined, 0],
    ['an empty clients: section', encodeBasic(`agent1:${TOKEN}`), 0, new Map<string, ClientSpec>()],
    ['a wrong token', encodeBasic('agent1:ks_wrong'), 0],
    ['an unknown name with a known token', encodeBasic(`agent2:${TOKEN}`), 0],
    ['no colon (a name alone)', encodeBasic('agent1'), 0],
    ['not Basic', `Bearer ${TOKEN}`, 0],
    ['non-canonical base64', `Basic ${Buffer.from(`agent1:${TOKEN}`).toString('base64')}!`, 0],
    ['the token at its expiry', encodeBasic(`agent1:${TOKEN}`), 10_000],
  ])('refuses %s', (_name, header, nowMs, configured: ReadonlyMap<string, ClientSpec> = clients) => {
    expect(authenticate(header, configured, nowMs)).toEqual({ ok: false });
  });
});
