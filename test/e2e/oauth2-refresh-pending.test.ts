import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStore } from '../../src/secrets/index.js';
import { cli, cliCollect, startCli, type CliProcess } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

/*
 * Issue #33, the CLI review: a rotated refresh token was lost when saving it failed once. With a provider that
 * revokes the old refresh token at every exchange, one failed save (a full disk, the store's lock held) made keyswap
 * drop the new token, and after recovery and a restart it kept sending the revoked one until a person re-authorised.
 * Now the token is kept (in memory and in a private, fsynced file in state_dir), served as the current one, saved
 * as soon as the store can be written again, across restarts; doctor says a value is waiting.
 *
 * The store is made unwritable the way a held lock or a full disk makes it: its lock directory, which keyswap (run
 * as another user, since root writes anything) cannot write. Root only.
 */

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const PH = 'refresh-PLACEHOLDER-pending-0123456789ab';
const CLIENT_ID = 'pending-client';
const CLIENT_SECRET = `pending-secret-${randomBytes(10).toString('hex')}`;
const INITIAL_RT = `rt-initial-${randomBytes(10).toString('hex')}`;

let h: Harness;
let auth: FakeAuthorities;
const refreshTokens = new Map([[CLIENT_ID, INITIAL_RT]]);
let keyswap: CliProcess | null = null;
let proxyUrl = '';
const configPath = (): string => path.join(h.dir, 'keyswap.yaml');
const state = (...p: string[]): string => path.join(h.dir, 'state', ...p);

beforeAll(async () => {
  if (!isRoot) return;
  const testCa = createTestCa();
  auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [CLIENT_ID]: CLIENT_SECRET }, refresh: { tokens: refreshTokens, rotate: true } });
  h = await startHarness({
    testCa,
    backend: 'backend: { type: file }',
    resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}` },
    secrets: `
  OAUTH:
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
    const r = cli(['secret', 'set', name as string, '--config', configPath()], { input: value });
    expect(r.status, r.stderr).toBe(0);
  }
  await h.stop();
  // From here keyswap runs as nobody, so that file permissions bind it.
  for (const p of walk(h.dir)) chownSync(p, NOBODY, NOBODY);
}, 60_000);

afterAll(async () => {
  if (!isRoot) return;
  await keyswap?.stop();
  if (existsSync(state('secrets.enc.lock.d'))) chmodSync(state('secrets.enc.lock.d'), 0o700);
  await h.close();
  await auth.close();
});

function walk(dir: string): string[] {
  return [dir, ...readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  })];
}

async function restart(): Promise<void> {
  await keyswap?.stop();
  keyswap = startCli(['serve', '--config', configPath()], { cwd: h.dir, uid: NOBODY, gid: NOBODY, env: { HOME: h.dir } });
  proxyUrl = `http://127.0.0.1:${await keyswap.listeningPort()}`;
}
const call = () => curlVia({ ...h, proxyUrl }, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
const stored = async (): Promise<string | undefined> => (await readStore(state('secrets.enc'), { kind: 'keyfile', path: state('store.key') })).entries.get('RF_REFRESH_TOKEN')?.value;
const lastExchange = () => h.auditRecords().filter((e) => e.type === 'token_exchange' && e.outcome === 'minted').at(-1);
const setStoreWritable = (writable: boolean): void => {
  mkdirSync(state('secrets.enc.lock.d'), { recursive: true });
  chownSync(state('secrets.enc.lock.d'), 0, 0);
  chmodSync(state('secrets.enc.lock.d'), writable ? 0o777 : 0o555);
};

describe.skipIf(!isRoot)('a rotated refresh token is never lost when saving it fails', () => {
  it('saved when the store can be written (the baseline)', async () => {
    setStoreWritable(true);
    await restart();
    const r = await call();
    expect(r.status, r.body).toBe(200);
    expect(lastExchange()).toMatchObject({ write_back: 'written' });
    expect(await stored()).toBe(refreshTokens.get(CLIENT_ID));
  });

  it('the store unwritable: the rotated token is kept in a private file, the request still served, the exchange audited as pending, doctor says so', async () => {
    setStoreWritable(false);
    await restart();
    const storedBefore = await stored();
    const r = await call();
    expect(r.status, r.body).toBe(200);
    expect(lastExchange()).toMatchObject({ write_back: 'pending' });
    // The provider revoked what the store holds; the current token is in the pending file alone.
    expect(await stored()).toBe(storedBefore);
    expect(refreshTokens.get(CLIENT_ID)).not.toBe(storedBefore);
    expect(statSync(state('pending-writes.json')).mode & 0o777).toBe(0o600);
    const doctor = await cliCollect(['doctor', '--config', configPath()], { env: { HOME: h.dir }, uid: NOBODY, gid: NOBODY });
    expect(doctor.stdout).toMatch(/RF_REFRESH_TOKEN: a rotated value has waited to be saved since/);
    expect(doctor.stdout + doctor.stderr).not.toContain(refreshTokens.get(CLIENT_ID) as string);
  });

  it('a restart while it waits: the next exchange uses the kept token (not the revoked stored one) and succeeds', async () => {
    await restart();
    const r = await call();
    expect(r.status, r.body).toBe(200);
    expect(lastExchange()).toMatchObject({ write_back: 'pending' });
  });

  it('once the store can be written again, the kept token lands there and the file goes', async () => {
    setStoreWritable(true);
    expect(await waitFor(() => !existsSync(state('pending-writes.json')), 20_000, 200)).toBe(true);
    expect(await stored()).toBe(refreshTokens.get(CLIENT_ID));
    await restart();
    const r = await call();
    expect(r.status, r.body).toBe(200);
    expect(lastExchange()).toMatchObject({ write_back: 'written' });
  });

  it('no token or secret in any log or audit line', () => {
    const text = h.auditText() + (keyswap?.stdout() ?? '') + (keyswap?.stderr() ?? '');
    for (const s of [CLIENT_SECRET, INITIAL_RT, ...auth.issued]) expect(text.includes(s)).toBe(false);
  });
});
