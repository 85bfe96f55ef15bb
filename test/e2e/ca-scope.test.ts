import type { SpawnSyncReturns } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCaCertificate, generateKeyPair, keyPairFromPem } from '../../src/tls/certificates.js';
import { LocalCa } from '../../src/tls/local-ca.js';
import { constraintsFor, type NameScope } from '../../src/tls/name-constraints.js';
import { curlVia, rawTlsVia, undiciVia } from '../helpers/clients.js';
import { cli, startCli, type CliProcess } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, waitFor, type Harness } from '../helpers/harness.js';

const DAY_MS = 86_400_000;
let h: Harness | undefined;
const extra: CliProcess[] = [];
afterEach(async () => {
  await Promise.all(extra.splice(0).map((p) => p.stop()));
  await h?.close();
  h = undefined;
});

const configOf = (harness: Harness): string => path.join(harness.dir, 'keyswap.yaml');
const stateOf = (harness: Harness): string => path.dirname(harness.caPath);

const ks = (harness: Harness, ...args: string[]): SpawnSyncReturns<string> => cli([...args, '--config', configOf(harness)], { cwd: harness.dir });

/** Another `keyswap serve` on the harness's config (after the first stopped): its port, or how it exited. */
function serveAgain(harness: Harness): Promise<{ port: number; stderr: () => string } | { code: number | null; stderr: string }> {
  const p = startCli(['serve', '--config', configOf(harness)], { cwd: harness.dir, env: { KEYSWAP_SECRET_TEST_API_KEY: harness.canary } });
  extra.push(p);
  return p.listeningPort().then(
    (port) => ({ port, stderr: p.stderr }),
    (e: unknown) => {
      if (p.child.exitCode === null && p.child.signalCode === null) throw e;
      return { code: p.child.exitCode, stderr: p.stderr() };
    },
  );
}

/** Adds a binding for `host` to the harness's TEST_API_KEY, on disk. */
function bindAlso(harness: Harness, host: string): void {
  const file = configOf(harness);
  const line = '      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }\n';
  writeFileSync(file, readFileSync(file, 'utf8').replace(line, `${line}      - { host: ${host} }\n`));
}

const HARNESS_HOSTS: NameScope = { kind: 'hosts', hosts: ['api.example.test', 'plain.example.test', 'untrusted.example.test'] };

/** Replaces the state dir's CA with one made at `madeAt` for `scope`: `any` is what an older keyswap left behind. */
function plantCa(harness: Harness, madeAt: Date, scope: NameScope): string {
  const key = generateKeyPair();
  const pem = createCaCertificate(key, madeAt, constraintsFor(scope));
  writeFileSync(path.join(stateOf(harness), 'ca-key.pem'), key.privateKeyPem, { mode: 0o600 });
  writeFileSync(harness.caPath, pem);
  return pem;
}

const reloadEvents = (harness: Harness): Record<string, unknown>[] => harness.auditRecords().filter((r) => r.type === 'config_reload');
async function reload(harness: Harness): Promise<Record<string, unknown>> {
  const before = reloadEvents(harness).length;
  harness.child.kill('SIGHUP');
  await waitFor(() => reloadEvents(harness).length > before);
  return reloadEvents(harness).at(-1) as Record<string, unknown>;
}

const FIX = 'fix: keyswap ca rotate, then (re)start keyswap and restart agents that copied ca.pem (agents started by keyswap run pick up the new CA on their own)';

describe("keyswap's CA is constrained to the hosts it decrypts", () => {
  it('serve makes it valid for a year and constrained to the bound hosts; ca show prints them; a bound host works through the proxy', async () => {
    h = await startHarness();
    // Made during startHarness, so before now: a year from then ends before a year from now.
    const cert = new X509Certificate(h.caPem);
    expect(Date.parse(cert.validTo) - Date.now()).toBeLessThanOrEqual(365 * DAY_MS);
    expect(Date.parse(cert.validTo) - Date.now()).toBeGreaterThan(364 * DAY_MS);
    const show = ks(h, 'ca', 'show');
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('name constraints: permitted api.example.test, plain.example.test, untrusted.example.test; excluded 0.0.0.0/0, ::/0\n');
    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
  });

  it('the CA key from the state dir, stolen, signs a leaf for an unbound host that agents trusting ca.pem reject', async () => {
    h = await startHarness();
    const key = keyPairFromPem(readFileSync(path.join(stateOf(h), 'ca-key.pem'), 'utf8'));
    const stolen = new LocalCa(h.caPem, h.caPath, key);
    const leafKey = generateKeyPair();
    const server = tls.createServer({ key: leafKey.privateKeyPem, cert: stolen.mintLeaf('unbound.example.test', leafKey).certPem }, (s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const error = await new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'unbound.example.test', ca: h?.caPem }, () => resolve('ok'));
        s.once('error', (err) => resolve(err.message));
      });
      expect(error).toMatch(/permitted subtree violation/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('serve refuses, in one line naming the host and the fix, a CA that does not cover a host bound since; after ca rotate it decrypts it', async () => {
    h = await startHarness();
    await h.stop();
    bindAlso(h, 'other.example.test');
    const refused = await serveAgain(h);
    expect(refused).toEqual({
      code: 1,
      stderr: `keyswap: ${configOf(h)} decrypts other.example.test, which the name constraints of keyswap's CA (${h.caPath}) do not cover; ${FIX}\n`,
    });

    expect(ks(h, 'ca', 'rotate').status).toBe(0);
    const started = await serveAgain(h);
    if (!('port' in started)) throw new Error(`keyswap did not start: ${started.stderr}`);
    const newCa = readFileSync(h.caPath, 'utf8');
    const restarted = { ...h, proxyUrl: `http://127.0.0.1:${started.port}`, proxyPort: started.port, caPem: newCa };
    (await rawTlsVia(restarted, 'other.example.test', 443, { ca: newCa })).destroy();
    const res = await undiciVia(restarted, 'https://api.example.test/v1/echo', { headers: { authorization: `Bearer ${PLACEHOLDER}` } });
    expect(res.status).toBe(200);
  });

  it('a reload that binds a host the CA does not cover, or switches to tls_termination: all, is refused and the running config stays', async () => {
    h = await startHarness();
    const good = readFileSync(configOf(h), 'utf8');
    // Narrowing the methods shows whether any of the new file was applied.
    bindAlso(h, 'other.example.test');
    writeFileSync(configOf(h), readFileSync(configOf(h), 'utf8').replace('methods: [GET, POST]', 'methods: [POST]'));
    expect(await reload(h)).toMatchObject({
      ok: false,
      errors: [`${configOf(h)} decrypts other.example.test, which the name constraints of keyswap's CA (${h.caPath}) do not cover; ${FIX}`],
    });
    writeFileSync(configOf(h), `${good.replace('methods: [GET, POST]', 'methods: [POST]')}\ntls_termination: all\n`);
    expect(await reload(h)).toMatchObject({ ok: false, errors: [expect.stringContaining('decrypts any host (tls_termination: all), which the name constraints')] });

    const res = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    expect(h.child.exitCode).toBeNull();
  });

  it('doctor: a host the CA does not cover is a finding with the fix; an unconstrained CA is one too, yet serve still starts with it', async () => {
    h = await startHarness();
    await h.stop();
    bindAlso(h, 'other.example.test');
    const uncovered = ks(h, 'doctor');
    expect(uncovered.status).toBe(1);
    expect(uncovered.stdout).toContain("!! the CA's name constraints do not cover other.example.test, which keyswap.yaml decrypts: keyswap serve refuses to start\n   fix: keyswap ca rotate");

    plantCa(h, new Date(), { kind: 'any' });
    const started = await serveAgain(h);
    expect(started).toHaveProperty('port');
    const unconstrained = ks(h, 'doctor');
    expect(unconstrained.stdout).toContain('!! the CA is unconstrained: its key could sign for any site, though only bound hosts are decrypted\n   fix: rotate to constrain it: keyswap ca rotate');
    expect(ks(h, 'ca', 'show').stdout).toContain('name constraints: none (its key can sign for any host)\n');
  });

  it('tls_termination: all makes an unconstrained CA; with unmatched_destination_policy: deny only bound hosts are decrypted, so it is constrained', async () => {
    h = await startHarness({ top: 'tls_termination: all' });
    expect(ks(h, 'ca', 'show').stdout).toContain('name constraints: none (its key can sign for any host)\n');
    expect(ks(h, 'doctor').stdout).toContain('ok the CA is unconstrained, as tls_termination: all needs');
    await h.close();
    h = await startHarness({ top: 'tls_termination: all\nunmatched_destination_policy: deny' });
    expect(ks(h, 'ca', 'show').stdout).toContain('name constraints: permitted api.example.test, plain.example.test, untrusted.example.test;');
  });
});

describe("the CA's expiry", () => {
  it('under 30 days left: serve warns at start and doctor reports it; an expired CA is refused with the fix', async () => {
    h = await startHarness();
    await h.stop();
    plantCa(h, new Date(Date.now() - 340 * DAY_MS), HARNESS_HOSTS); // 25 days left
    const started = await serveAgain(h);
    if (!('port' in started)) throw new Error(`keyswap did not start: ${started.stderr}`);
    expect(await waitFor(() => started.stderr().includes("keyswap's CA expires in 24 days; rotate it: keyswap ca rotate"))).toBe(true);
    expect(ks(h, 'doctor').stdout).toMatch(/!! the CA expires in 24 days\n {3}fix: keyswap ca rotate/);
    await Promise.all(extra.splice(0).map((p) => p.stop()));

    plantCa(h, new Date(Date.now() - 366 * DAY_MS), HARNESS_HOSTS);
    const refused = await serveAgain(h);
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringMatching(/^keyswap: .*ca\.pem: keyswap's CA expired on \S+; fix: keyswap ca rotate/) });
  });
});
