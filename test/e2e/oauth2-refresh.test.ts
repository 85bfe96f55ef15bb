import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/secrets/index.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { cli, startCli, type CliProcess } from '../helpers/cli.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

// Issue #14: oauth2_refresh against a provider that rotates the refresh token on every exchange and revokes the
// one used. keyswap must store each new refresh token (file backend) before using the access token that came
// with it, so restarts keep working; a revoked one fails closed with the reason audited.
const PH = 'google-oauth-PLACEHOLDER-0123456789abcdef';
const CLIENT_ID = 'refresh-client';
const CLIENT_SECRET = `rf-secret-${randomBytes(10).toString('hex')}`;
const INITIAL_RT = `rt-initial-${randomBytes(10).toString('hex')}`;

let h: Harness;
let auth: FakeAuthorities;
const refreshTokens = new Map([[CLIENT_ID, INITIAL_RT]]);
const extra: CliProcess[] = [];
let proxyUrl = '';

beforeAll(async () => {
  const testCa = createTestCa();
  auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [CLIENT_ID]: CLIENT_SECRET }, refresh: { tokens: refreshTokens, rotate: true } });
  h = await startHarness({
    testCa,
    backend: 'backend: { type: file }',
    resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
    secrets: `
  GOOGLE_OAUTH:
    placeholder: "${PH}"
    inject:
      type: oauth2_refresh
      token_url: "https://auth.example.test/oauth2/token"
      client_id_secret: RF_CLIENT_ID
      client_secret_secret: RF_CLIENT_SECRET
      refresh_token_secret: RF_REFRESH_TOKEN
      write_back_min_interval_seconds: 0
    bindings: [{ host: api.example.test }]
`,
  });
  for (const [name, value] of [['RF_CLIENT_ID', CLIENT_ID], ['RF_CLIENT_SECRET', CLIENT_SECRET], ['RF_REFRESH_TOKEN', INITIAL_RT]]) {
    const r = cli(['secret', 'set', name as string, '--config', path.join(h.dir, 'keyswap.yaml')], { input: value });
    expect(r.status, r.stderr).toBe(0);
  }
  proxyUrl = h.proxyUrl;
});
afterAll(async () => {
  // Each restarted keyswap is gone before the harness removes the state directory it writes in.
  await Promise.all(extra.map((p) => p.stop()));
  await h.close();
  await auth.close();
});

const stored = async (): Promise<string | undefined> =>
  (await readStore(path.join(h.dir, 'state/secrets.enc'), { kind: 'keyfile', path: path.join(h.dir, 'state/store.key') })).entries.get('RF_REFRESH_TOKEN')?.value;
const call = () => curlVia({ ...h, proxyUrl }, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });

/** Stops the keyswap serving now and starts another on the same config, state and audit log. */
async function restart(): Promise<void> {
  const running = extra.at(-1);
  if (running === undefined) await h.stop();
  else await running.stop();
  const keyswap = startCli(['serve', '--config', path.join(h.dir, 'keyswap.yaml')], { cwd: h.dir });
  extra.push(keyswap);
  const port = await keyswap.listeningPort();
  proxyUrl = `http://127.0.0.1:${port}`;
}

describe('oauth2_refresh with a provider that rotates refresh tokens', () => {
  it('exchanges the stored refresh token, stores the rotated one before use, and injects the access token', async () => {
    const r = await call();
    expect(r.status, r.body).toBe(200);
    expect(String(h.upstream.requests.at(-1)?.headers.authorization)).toMatch(/^Bearer at-/);
    expect(await stored()).toBe(refreshTokens.get(CLIENT_ID));
    expect(await stored()).not.toBe(INITIAL_RT);
    expect(h.auditRecords().find((e) => e.type === 'token_exchange' && e.outcome === 'minted')).toMatchObject({ minter: 'oauth2_refresh', outcome: 'minted', write_back: 'written' });
  });

  it('two restarts in a row keep working: each starts from the refresh token the last one stored', async () => {
    for (let i = 0; i < 2; i++) {
      await restart();
      const r = await call();
      expect(r.status, r.body).toBe(200);
      expect(await stored()).toBe(refreshTokens.get(CLIENT_ID));
    }
    expect(auth.calls.filter((c) => c.endpoint === 'oauth2')).toHaveLength(3);
  });

  it('a revoked refresh token fails closed: 503, nothing sent upstream, invalid_grant audited', async () => {
    refreshTokens.set(CLIENT_ID, 'rt-revoked-elsewhere');
    await restart();
    const before = h.upstream.requests.length;
    const r = await call();
    expect(r.status).toBe(503);
    expect(h.upstream.requests.length).toBe(before);
    expect(h.auditRecords().filter((e) => e.type === 'token_exchange').at(-1)).toMatchObject({ outcome: 'failed', reason: 'invalid_grant', status: 400 });
  });

  it('no refresh token, client secret or access token in any log or audit line', () => {
    const text = h.auditText() + h.stdout() + h.stderr();
    for (const s of [CLIENT_SECRET, INITIAL_RT, ...auth.issued]) expect(text.includes(s)).toBe(false);
  });
});
