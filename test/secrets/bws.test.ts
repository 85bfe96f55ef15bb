import { chmodSync, chownSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { openBackend, Secret, SecretNotFound } from '../../src/secrets/index.js';
import { startFakeBws, type FakeBws } from '../helpers/fake-bws.js';
import { cli } from '../helpers/cli.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';

let h: Harness | undefined;
let bws: FakeBws | undefined;
afterEach(async () => {
  await h?.close();
  await bws?.close();
  h = bws = undefined;
});

const PH = 'sk-PLACEHOLDER-BWS-0123456789abcdef';

async function start(timeoutSeconds = 2, ttlSeconds = 1, more: { stateFile?: string; umask?: number } = {}): Promise<{ h: Harness; bws: FakeBws }> {
  bws = await startFakeBws();
  const tokenFile = path.join('/tmp', `bws-token-${process.pid}-${Date.now()}`);
  writeFileSync(tokenFile, bws.accessToken, { mode: 0o600 });
  h = await startHarness({
    ...(more.umask === undefined ? {} : { umask: more.umask }),
    backend: `backend:
  type: bws
  config:
    organization_id: "${bws.organizationId}"
    access_token_file: ${tokenFile}
    api_url: ${bws.url}/api
    identity_url: ${bws.url}/identity
    timeout_seconds: ${timeoutSeconds}${more.stateFile === undefined ? '' : `
    state_file: ${more.stateFile}`}`,
    top: `cache: { ttl_seconds: ${ttlSeconds}, jitter_seconds: 0 }`,
    secrets: `
  OPENAI_API_KEY:
    placeholder: "${PH}"
    inject: { header: Authorization, format: "Bearer {OPENAI_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  OTHER_KEY:
    placeholder: "sk-PLACEHOLDER-OTHER-0123456789abcd"
    inject: { header: x-api-key, format: "{OTHER_KEY}" }
    bindings: [ { host: other.example.test } ]`,
  });
  return { h, bws };
}

describe('bws backend: the real SDK against a local server speaking the BWS protocol', () => {
  it('logs in, maps the name to its id, and injects the value; a rotation is used within the TTL (K8)', async () => {
    const { h, bws } = await start();
    bws.set('OPENAI_API_KEY', 'bws-value-1');
    const first = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(first.status).toBe(200);
    expect(h.upstream.requests[0]?.headers.authorization).toBe('Bearer bws-value-1');
    bws.set('OPENAI_API_KEY', 'bws-value-2');
    expect(
      await waitFor(() => false, 1_100), // let the 1 s TTL pass
    ).toBe(false);
    await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(h.upstream.requests[1]?.headers.authorization).toBe('Bearer bws-value-2');
    expect(bws.calls.login).toBe(1);
    expect(h.stdout() + h.stderr() + h.auditText()).not.toMatch(/bws-value|0\.[0-9a-f-]{36}\./);
  });

  it('store() writes a value through the SDK (a rotated refresh token), keeping the secret; the next fetch reads it', async () => {
    const fake = (bws = await startFakeBws());
    fake.set('GOOGLE_OAUTH_REFRESH_TOKEN', 'rt-old');
    const tokenFile = path.join('/tmp', `bws-token-${process.pid}-${Date.now()}`);
    writeFileSync(tokenFile, fake.accessToken, { mode: 0o600 });
    onTestFinished(() => rmSync(tokenFile, { force: true }));
    const backend = await openBackend({ type: 'bws', organizationId: fake.organizationId, accessTokenFile: tokenFile, stateFile: null, apiUrl: `${fake.url}/api`, identityUrl: `${fake.url}/identity`, timeoutMs: 5000 }, {}, () => {});
    try {
      const signal = AbortSignal.timeout(5000);
      expect((await backend.fetch('GOOGLE_OAUTH_REFRESH_TOKEN', { signal })).reveal()).toBe('rt-old');
      await backend.store?.('GOOGLE_OAUTH_REFRESH_TOKEN', new Secret('rt-rotated-1'));
      expect(fake.calls.update).toBe(1);
      expect(fake.valueOf('GOOGLE_OAUTH_REFRESH_TOKEN')).toBe('rt-rotated-1');
      expect((await backend.fetch('GOOGLE_OAUTH_REFRESH_TOKEN', { signal })).reveal()).toBe('rt-rotated-1');
      await expect(backend.store?.('NOT_THERE', new Secret('x'))).rejects.toThrow(SecretNotFound);
    } finally {
      await backend.close?.();
    }
  });

  it('20 concurrent requests on a cold cache cost one get-by-ids call', async () => {
    const { h, bws } = await start(2, 300);
    bws.set('OPENAI_API_KEY', 'bws-value');
    const results = await Promise.all(Array.from({ length: 20 }, () => curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(bws.calls['get-by-ids']).toBe(1);
  });

  it('a hung BWS makes requests to its bound host fail closed within the timeout, and keyswap keeps serving', async () => {
    const { h, bws } = await start(1);
    bws.mode = 'hang';
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`], maxTimeSeconds: 10 });
    expect(res.status).toBe(503);
    // Without a placeholder too: the response could echo a bound secret keyswap cannot fetch to scrub (K1).
    const plain = await curlVia(h, 'https://api.example.test/v1/echo', { maxTimeSeconds: 5 });
    expect(plain.status).toBe(503);
    expect(h.upstream.requests).toHaveLength(0);
    const health = await curlVia(h, 'http://keyswap.invalid/healthz', { maxTimeSeconds: 5 });
    expect(health.status).toBe(200);
  });

  it('a BWS error status fails closed with 503, naming the status in the log only', async () => {
    const { h, bws } = await start();
    bws.mode = { status: 500 };
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(res.status).toBe(503);
    expect(res.body).toBe('keyswap: secret unavailable\n');
  });

  it('an ambiguous name is refused (503), with both ids in the log and neither value anywhere', async () => {
    const { h, bws } = await start();
    const a = bws.add('OPENAI_API_KEY', 'bws-value-one');
    const b = bws.add('OPENAI_API_KEY', 'bws-value-two');
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] });
    expect(res.status).toBe(503);
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.stderr()).toContain(a);
    expect(h.stderr()).toContain(b);
    expect(h.stdout() + h.stderr() + h.auditText()).not.toMatch(/bws-value/);
  });
});

describe('bws backend: the state file (the SDK caches a login token there) is never readable by others', () => {
  const stateDir = (): string => {
    return tempWorld('bws-state').dir;
  };

  it('is created 0600 before the SDK writes it, even under umask 000, and stays 0600 once it holds the token', async () => {
    const stateFile = path.join(stateDir(), 'bws-state.json');
    const { h, bws } = await start(2, 300, { stateFile, umask: 0o000 });
    // keyswap is up and has not logged in yet: the file the SDK will write into already exists, private.
    expect(bws.calls.login).toBe(0);
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    bws.set('OPENAI_API_KEY', 'bws-value');
    expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PH}`] })).status).toBe(200);
    expect(bws.calls.login).toBe(1);
    expect(statSync(stateFile).size).toBeGreaterThan(0); // the SDK wrote its token into keyswap's file
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
  });

  it('an existing state file others can read is made 0600 at start, before any login', async () => {
    const stateFile = path.join(stateDir(), 'bws-state.json');
    writeFileSync(stateFile, '');
    chmodSync(stateFile, 0o644);
    const { bws } = await start(2, 300, { stateFile });
    expect(bws.calls.login).toBe(0);
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
  });

  // Only root can hand keyswap a file it may write but not chmod (another user's file, writable by all).
  it.skipIf(process.getuid?.() !== 0)('one that cannot be made private (another user owns it) stops keyswap with the fix, not silently', async () => {
    const fake = await startFakeBws();
    onTestFinished(() => fake.close());
    const dir = stateDir();
    chmodSync(dir, 0o755);
    const nobody = 65534;
    chownSync(dir, nobody, nobody);
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, fake.accessToken, { mode: 0o600 });
    chownSync(tokenFile, nobody, nobody);
    const stateFile = path.join(dir, 'bws-state.json');
    writeFileSync(stateFile, '');
    chmodSync(stateFile, 0o666); // root's file: keyswap (as nobody) can write it but not change its mode
    const config = path.join(dir, 'keyswap.yaml');
    writeFileSync(config, `version: 1
listen: 127.0.0.1:0
state_dir: ./state
audit: { path: ./audit.jsonl }
backend:
  type: bws
  config: { organization_id: "${fake.organizationId}", access_token_file: ${tokenFile}, state_file: ${stateFile}, api_url: ${fake.url}/api, identity_url: ${fake.url}/identity }
secrets: {}
`);
    const r = cli(['serve', '--config', config], { cwd: dir, uid: nobody, gid: nobody, timeoutMs: 15_000 });
    expect(r.stdout).not.toContain('listening');
    expect(r.stderr).toBe(`keyswap: bws backend: the state file ${stateFile} is readable by group or others and cannot be made private (EPERM); run: chmod 600 ${stateFile}\n`);
    expect(r.status).toBe(2);
  });
});
