import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness, type Harness } from '../../helpers/harness.js';
import { trustDomain } from '../../helpers/spiffe-certs.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack (another user on the host): listen_tls.client_ca_file decides who every spiffe client is, and keyswap
 * re-reads it every second. loadConfig() refuses a config or an upstream.extra_ca_file that others can write
 * (looseWriteAccess), but never looks at listen_tls's files: a bundle that another user can write is served. That
 * user (uid 65534 here, via setpriv) appends a CA of their own, waits a second, and presents a certificate for
 * spiffe://example.org/agent/ci: TEST_API_KEY is injected for them.
 * Expected: keyswap refuses to start (as for extra_ca_file), or at least refuses to load such a bundle.
 */
describe('listen_tls.client_ca_file writable by another user', () => {
  it('is refused like upstream.extra_ca_file, not trusted', async () => {
    const w = tempWorld('ca-write');
    chmodSync(w.dir, 0o755);
    const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
    const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
    const live = path.join(w.dir, 'live');
    mkdirSync(live, { mode: 0o755 });
    const bundle = path.join(live, 'bundle.pem');
    copyFileSync(td.caFile, bundle);
    chmodSync(bundle, 0o666);
    let h: Harness;
    try {
      h = await startHarness({
        top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${bundle} }
clients:
  ci: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [TEST_API_KEY] }`,
      });
    } catch (err) {
      // The fix: keyswap names the file and will not start.
      expect((err as Error).message).toMatch(/client_ca_file/);
      return;
    }
    try {
      const tlsUrl = /TLS listener: (https:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout())?.[1] as string;
      // The other user's CA, appended by that user.
      const evil = trustDomain(path.join(w.dir, 'evil'), 'example.org');
      execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'sh', '-c', 'cat >> "$0"', bundle], { input: readFileSync(evil.caFile) });
      await new Promise((r) => setTimeout(r, 2_000));
      const mine = evil.issue('ci-forged', 'URI:spiffe://example.org/agent/ci');
      const r = await curlVia(h, 'https://api.example.test/v1/echo', {
        proxy: tlsUrl, headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--proxy-cacert', td.caFile, '--proxy-cert', mine.certFile, '--proxy-key', mine.keyFile],
      });
      expect(h.upstream.requests.some((q) => q.headers.authorization === `Bearer ${h.canary}`), `another user's CA was trusted (status ${r.status})`).toBe(false);
    } finally {
      await h.close();
    }
  });
});
