import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { cli, cliCollect } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';

let h: Harness;
const setSecret = (value: string): number | null =>
  cli(['secret', 'set', 'TEST_API_KEY', '--config', path.join(h.dir, 'keyswap.yaml')], { input: value }).status;

beforeAll(async () => {
  h = await startHarness({ backend: 'backend: { type: file }', top: 'cache: { ttl_seconds: 1, jitter_seconds: 0 }' });
});
afterAll(async () => {
  await h.close();
});

describe('file backend through keyswap serve', () => {
  it('a value stored while keyswap runs is injected, and a rotation is used within the TTL (K8)', async () => {
    const before = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(before.status).toBe(503); // nothing stored yet: fail closed
    expect(setSecret('file-value-1')).toBe(0);
    await waitFor(() => false, 1_100); // the negative cache entry expires
    await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer file-value-1');
    expect(setSecret('file-value-2')).toBe(0);
    await waitFor(() => false, 1_100); // past the 1 s TTL
    await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer file-value-2');
    expect(h.stdout() + h.stderr() + h.auditText()).not.toMatch(/file-value/);
  });
});

describe('a changed value, applied at once', () => {
  it('after keyswap reload, the value just stored is injected though the old one is still cached', async () => {
    const r = await startHarness({ backend: 'backend: { type: file }', top: 'cache: { ttl_seconds: 3600, jitter_seconds: 0 }' });
    const config = path.join(r.dir, 'keyswap.yaml');
    const set = (value: string) => cli(['secret', 'set', 'TEST_API_KEY', '--config', config], { input: value });
    const ask = () => curlVia(r, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    try {
      expect(set('reload-value-1').status).toBe(0);
      await ask();
      expect(r.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer reload-value-1');
      const second = set('reload-value-2');
      expect(second.stdout).toContain('or at once after: keyswap reload');
      await ask();
      expect(r.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer reload-value-1'); // cached for an hour
      const reloaded = (await cliCollect(['reload', '--config', config])).code;
      expect(reloaded).toBe(0);
      await ask();
      expect(r.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer reload-value-2');
    } finally {
      await r.close();
    }
  });
});

describe('credentials backend through keyswap serve', () => {
  it('injects the value systemd put in $CREDENTIALS_DIRECTORY', async () => {
    const creds = tempWorld('creds');
    creds.write('TEST_API_KEY', 'cred-value\n', 0o400);
    const dir = creds.dir;
    const c = await startHarness({ backend: 'backend: { type: credentials }', env: { CREDENTIALS_DIRECTORY: dir } });
    try {
      await curlVia(c, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(c.upstream.requests.at(-1)?.headers.authorization).toBe('Bearer cred-value');
    } finally {
      await c.close();
    }
  });
});
