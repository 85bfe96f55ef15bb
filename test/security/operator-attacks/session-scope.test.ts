import { afterEach, describe, expect, it } from 'vitest';
import { findCanary, startHarness, type Harness } from '../../helpers/harness.js';
import { agentGet, openSession, reloadWith, sha } from './util.js';

/*
 * Attack (goal 3): a session of `keyswap run` copies its parent's secrets and expiry when it starts. The operator
 * then narrows the parent (a reload that takes a secret away, or sets an expiry that has passed). The session, kept
 * alive by the agent's command, should lose what its parent lost: it acts for the parent, "its secrets or fewer".
 */

const TOKEN = 'ks_attack28-parent-token-0123456789';
const PH = 'sk-PLACEHOLDER-ATK28-0123456789abcdef';
const PH2 = 'sk-PLACEHOLDER-ATK28-OTHER-012345678';
const OTHER_VALUE = 'other-real-value-atk28-0123456789';

const SECRETS = `
  TEST_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test }
  OTHER_KEY:
    placeholder: "${PH2}"
    inject: { header: X-Api-Key, format: "{OTHER_KEY}" }
    bindings:
      - { host: api.example.test }
`;

let h: Harness;
let end: (() => void) | null = null;
afterEach(async () => {
  end?.();
  end = null;
  await h?.close();
});

async function start(): Promise<void> {
  h = await startHarness({ secrets: SECRETS, secretValues: { OTHER_KEY: OTHER_VALUE }, top: `clients:\n  agent-a: { token_sha256: "${sha(TOKEN)}", secrets: [TEST_API_KEY, OTHER_KEY] }\n` });
}

const other = `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nX-Api-Key: ${PH2}\r\nConnection: close\r\n\r\n`;
const main = `GET /v1/echo HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${PH}\r\nConnection: close\r\n\r\n`;

describe('operator attacks: a session outlives what its parent lost', () => {
  it('a reload takes OTHER_KEY from the parent: its running session no longer gets OTHER_KEY injected', async () => {
    await start();
    const s = await openSession(h, { parent: 'agent-a', command: 'agent' });
    end = s.end;
    // Before: the session (like its parent) gets OTHER_KEY.
    expect((await agentGet(h, `${s.name}:${s.token}`, other)).slice(0, 12)).toBe('HTTP/1.1 200');
    expect(h.upstream.requests.at(-1)?.headers['x-api-key']).toBe(OTHER_VALUE);
    await reloadWith(h, (y) => y.replace('secrets: [TEST_API_KEY, OTHER_KEY] }', 'secrets: [TEST_API_KEY] }'));
    // The parent lost it.
    await agentGet(h, `agent-a:${TOKEN}`, other);
    expect(h.upstream.requests.at(-1)?.headers['x-api-key']).toBe(PH2);
    // The session acting for the parent must not keep it.
    const before = h.upstream.requests.length;
    await agentGet(h, `${s.name}:${s.token}`, other);
    const seen = h.upstream.requests.slice(before).map((r) => r.headers['x-api-key']);
    expect(seen).not.toContain(OTHER_VALUE);
    expect(findCanary(h)).toEqual([]);
  });

  it('a reload gives the parent an expiry that has passed: its running session is refused too', async () => {
    await start();
    const s = await openSession(h, { parent: 'agent-a', command: 'agent' });
    end = s.end;
    expect((await agentGet(h, `${s.name}:${s.token}`, main)).slice(0, 12)).toBe('HTTP/1.1 200');
    await reloadWith(h, (y) => y.replace('secrets: [TEST_API_KEY, OTHER_KEY] }', 'secrets: [TEST_API_KEY, OTHER_KEY], expires: "2001-01-01T00:00:00Z" }'));
    // The parent is expired: 407.
    expect(await agentGet(h, `agent-a:${TOKEN}`, main)).toMatch(/407/);
    const before = h.upstream.requests.length;
    const answer = await agentGet(h, `${s.name}:${s.token}`, main);
    const injected = h.upstream.requests.slice(before).filter((r) => r.headers.authorization === `Bearer ${h.canary}`);
    expect(injected, `the session of an expired client still got: ${answer.slice(0, 40)}`).toEqual([]);
    expect(answer).toMatch(/407/);
  });
});
