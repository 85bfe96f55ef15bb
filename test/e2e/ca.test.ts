import type { SpawnSyncReturns } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { curlVia, rawTlsVia } from '../helpers/clients.js';
import { cli, startCli, type CliProcess } from '../helpers/cli.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
const extra: CliProcess[] = [];
afterEach(async () => {
  // Wait for each extra keyswap to exit: one still stopping writes its proxy_stop into the directory being removed.
  await Promise.all(extra.splice(0).map((p) => p.stop()));
  await h?.close();
  h = undefined;
});

const ca = (harness: Harness, ...args: string[]): SpawnSyncReturns<string> =>
  cli(['ca', ...args, '--config', path.join(harness.dir, 'keyswap.yaml')], { cwd: harness.dir });

/** A second keyswap on the same config (after the first has stopped): its port, once it listens. */
function serveAgain(harness: Harness): Promise<number> {
  const p = startCli(['serve', '--config', path.join(harness.dir, 'keyswap.yaml')], { cwd: harness.dir, env: { KEYSWAP_SECRET_TEST_API_KEY: harness.canary } });
  extra.push(p);
  return p.listeningPort();
}

const keyBody = (pem: string): string => pem.replace(/-----[^-]+-----|\s/g, '');

describe('keyswap ca', () => {
  it('show names the certificate agents trust and its fingerprint', async () => {
    h = await startHarness();
    const r = ca(h, 'show');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`certificate: ${h.caPath}`);
    expect(r.stdout).toContain(`sha256: ${new X509Certificate(h.caPem).fingerprint256}`);
    expect(r.stdout).toMatch(/valid until: \S+ \(\d+ days\)/);
  });

  it('rotate replaces key and certificate, keeps no copy of the old key, and a restarted keyswap signs with the new CA only', async () => {
    h = await startHarness();
    const stateDir = path.dirname(h.caPath);
    const oldCa = h.caPem;
    const oldKey = readFileSync(path.join(stateDir, 'ca-key.pem'), 'utf8');

    const r = ca(h, 'rotate');
    expect(r.status).toBe(0);
    const newCa = readFileSync(h.caPath, 'utf8');
    expect(newCa).not.toBe(oldCa);
    expect(r.stdout).toContain(`old sha256: ${new X509Certificate(oldCa).fingerprint256}`);
    expect(r.stdout).toContain(`sha256: ${new X509Certificate(newCa).fingerprint256}`);
    expect(r.stdout).toMatch(new RegExp(`keyswap \\(pid ${h.child.pid}\\) still signs with the old CA: restart it`));
    expect(statSync(path.join(stateDir, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    // The old key is gone from the state directory (no backup, no temp file left behind).
    for (const f of readdirSync(stateDir, { recursive: true, withFileTypes: true })) {
      if (f.isFile()) expect(readFileSync(path.join(f.parentPath, f.name), 'latin1')).not.toContain(keyBody(oldKey).slice(0, 64));
    }
    expect(readFileSync(path.join(stateDir, 'ca-bundle.pem'), 'utf8')).toContain(newCa.trim());

    // The running keyswap still presents leaves of the old CA until it restarts.
    (await rawTlsVia(h, 'api.example.test', 443, { ca: oldCa })).destroy();
    await h.stop();
    const port = await serveAgain(h);
    const restarted = { ...h, proxyUrl: `http://127.0.0.1:${port}`, proxyPort: port, caPem: newCa };
    const res = await curlVia(restarted, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
    await expect(rawTlsVia(restarted, 'api.example.test', 443, { ca: oldCa })).rejects.toThrow(/self.signed|unable to verify|certificate/i);
  });

  it('a key that does not match the certificate is refused by name, and rotate repairs it', async () => {
    h = await startHarness();
    await h.stop();
    const keyPath = path.join(path.dirname(h.caPath), 'ca-key.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });

    const broken = ca(h, 'show');
    expect(broken.status).toBe(1);
    expect(broken.stderr).toBe(`keyswap: ${h.caPath} and ${keyPath} do not belong together (a rotation cut short?); run keyswap ca rotate to make a new pair\n`);
    expect(ca(h, 'rotate').status).toBe(0);
    expect(ca(h, 'show').status).toBe(0);
  });

  it('an unknown verb is a usage error that shows the usage', async () => {
    h = await startHarness();
    const r = ca(h, 'burn');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown ca command burn\nusage: keyswap ca show/);
  });
});
