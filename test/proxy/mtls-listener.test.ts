import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { cliCollect } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness, type Harness } from '../helpers/harness.js';
import { trustDomain, type TrustDomain } from '../helpers/spiffe-certs.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 6: agents identified by mTLS / SPIFFE. keyswap's TLS proxy listener (`listen_tls`), clients with a
 * `spiffe_id`, X.509-SVIDs made by openssl: curl and undici through it; an expired certificate, one of another trust
 * domain, an unknown ID and none at all get nothing; a certificate that expires on an open connection loses it; the
 * listener's certificate and bundle rotated on disk while serving.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ID = 'spiffe://example.org/agent/ci';

interface World { readonly td: TrustDomain; readonly other: TrustDomain; readonly live: { cert: string; key: string; ca: string } }

function world(): World {
  const w = tempWorld('spiffe');
  const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
  const other = trustDomain(path.join(w.dir, 'other'), 'other.org');
  const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
  // The files keyswap serves from, as SPIRE's helper writes them: replaced in place on rotation.
  const liveDir = path.join(w.dir, 'live');
  mkdirSync(liveDir);
  const live = { cert: path.join(liveDir, 'svid.pem'), key: path.join(liveDir, 'svid.key'), ca: path.join(liveDir, 'bundle.pem') };
  copyFileSync(server.certFile, live.cert);
  copyFileSync(server.keyFile, live.key);
  copyFileSync(td.caFile, live.ca);
  return { td, other, live };
}

async function start(wd: World, expires = ''): Promise<{ h: Harness; tlsUrl: string }> {
  const h = await startHarness({
    top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${wd.live.cert}, key_file: ${wd.live.key}, client_ca_file: ${wd.live.ca} }
clients:
  ci: { spiffe_id: "${ID}", secrets: [TEST_API_KEY]${expires} }`,
  });
  const m = /TLS listener: (https:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout());
  if (!m) throw new Error(`no TLS listener announced: ${h.stdout()}`);
  return { h, tlsUrl: m[1] as string };
}

const viaTls = (h: Harness, tlsUrl: string, caFile: string, cert: { certFile: string; keyFile: string } | null): ReturnType<typeof curlVia> =>
  curlVia(h, 'https://api.example.test/v1/echo', {
    proxy: tlsUrl,
    headers: [`Authorization: Bearer ${PLACEHOLDER}`],
    extra: ['--proxy-cacert', caFile, ...(cert === null ? [] : ['--proxy-cert', cert.certFile, '--proxy-key', cert.keyFile])],
  });

describe('the TLS listener and SPIFFE clients', () => {
  it('curl with a good SVID gets the secret injected; none, expired, another trust domain or an unknown ID get 407 and nothing', async () => {
    const wd = world();
    const { h, tlsUrl } = await start(wd);
    try {
      const good = await viaTls(h, tlsUrl, wd.td.caFile, wd.td.issue('ci', `URI:${ID}`));
      expect(good.status, good.stderr).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
      expect(h.auditRecords().some((r) => r.type === 'inject_decision' && r.client === 'ci')).toBe(true);
      const seen = h.upstream.requests.length;
      const cases = {
        none: null,
        expired: wd.td.issue('expired', `URI:${ID}`, { from: new Date(Date.now() - 2 * 86_400_000), to: new Date(Date.now() - 86_400_000) }),
        otherDomain: wd.other.issue('foreign', `URI:${ID}`),
        unknownId: wd.td.issue('stranger', 'URI:spiffe://example.org/agent/stranger'),
        twoUris: wd.td.issue('two', `URI:${ID},URI:spiffe://example.org/agent/other`),
      };
      for (const [what, cert] of Object.entries(cases)) {
        const r = await viaTls(h, tlsUrl, wd.td.caFile, cert);
        // curl reports a refused CONNECT as its exit code 56 with the 407 in its headers.
        expect(r.body, what).not.toContain(h.canary);
        expect(`${r.status} ${r.stderr}`, what).toMatch(/407/);
      }
      expect(h.upstream.requests.length).toBe(seen);
    } finally {
      await h.close();
    }
  });

  it('undici with proxyTls; a certificate that expires on an open connection loses it; the listener\'s files rotate on disk while serving', async () => {
    const wd = world();
    const { h, tlsUrl } = await start(wd);
    try {
      // Long enough for the first request on a loaded machine, short enough to watch it end.
      const shortLived = wd.td.issue('short', `URI:${ID}`, { from: new Date(Date.now() - 60_000), to: new Date(Date.now() + 7_000) });
      const agent = new ProxyAgent({
        uri: tlsUrl,
        proxyTls: { cert: readFileSync(shortLived.certFile), key: readFileSync(shortLived.keyFile), ca: wd.td.caPem },
        requestTls: { ca: h.caPem },
      });
      const first = await request('https://api.example.test/v1/echo', { dispatcher: agent, headers: { authorization: `Bearer ${PLACEHOLDER}` } });
      await first.body.text();
      expect(first.statusCode).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
      await sleep(Math.max(0, Date.parse(new (await import('node:crypto')).X509Certificate(readFileSync(shortLived.certFile)).validTo) - Date.now()) + 1_500);
      // Past the certificate's notAfter: the open connection was closed (audited) and a new one cannot be made.
      const seen = h.upstream.requests.length;
      const after = await request('https://api.example.test/v1/echo', { dispatcher: agent, headers: { authorization: `Bearer ${PLACEHOLDER}` } }).then(async (r) => { await r.body.text(); return r.statusCode; }, (e: Error) => e.message);
      expect(after).not.toBe(200);
      expect(h.upstream.requests.length).toBe(seen);
      expect(h.auditRecords().some((r) => r.type === 'client_disconnected' && r.client === 'ci' && r.reason === 'client_expired')).toBe(true);
      await agent.close();

      // Rotation: a new trust domain CA signs the listener's certificate and the agents'; keyswap picks both up.
      const next = trustDomain(path.join(wd.td.dir, '..', 'next'), 'example.org');
      const nextServer = next.issue('keyswap2', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
      copyFileSync(nextServer.keyFile, wd.live.key);
      copyFileSync(nextServer.certFile, wd.live.cert);
      copyFileSync(next.caFile, wd.live.ca);
      await sleep(2_000);
      const rotated = await viaTls(h, tlsUrl, next.caFile, next.issue('ci2', `URI:${ID}`));
      expect(rotated.status, rotated.stderr).toBe(200);
      const oldAgent = await viaTls(h, tlsUrl, wd.td.caFile, wd.td.issue('ci3', `URI:${ID}`));
      expect(oldAgent.status).not.toBe(200);
      expect(h.stdout() + h.stderr()).toContain('TLS listener certificates reloaded');
    } finally {
      await h.close();
    }
  });

  it('keyswap run --client --cert --key wires Node and curl to present the certificate; config rules', async () => {
    const wd = world();
    const w = tempWorld('spiffe-run');
    const svid = wd.td.issue('runner', `URI:${ID}`);
    const { h } = await start(wd);
    await h.stop(); // its config, state and upstreams are reused by keyswap run, which starts a keyswap of its own
    const config = path.join(h.dir, 'keyswap.yaml');
    const env = { KEYSWAP_SECRET_TEST_API_KEY: h.canary, HOME: w.dir };
    try {
    const node = await cliCollect(['run', '--config', config, '--client', 'ci', '--cert', svid.certFile, '--key', svid.keyFile, '--', process.execPath, '-e',
      "fetch('https://api.example.test/v1/echo',{headers:{authorization:'Bearer " + PLACEHOLDER + "'}}).then(async r=>console.log('status',r.status)).catch(e=>console.log('error',e.cause?.message??e.message))"], { cwd: w.dir, env });
    expect(node.stdout, node.stderr).toContain('status 200');
    const curl = await cliCollect(['run', '--config', config, '--client', 'ci', '--cert', svid.certFile, '--key', svid.keyFile, '--', 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${PLACEHOLDER}`, 'https://api.example.test/v1/echo'], { cwd: w.dir, env });
    expect(curl.stdout, curl.stderr).toBe('200');
    const wrong = await cliCollect(['run', '--config', config, '--client', 'ci', '--cert', wd.td.issue('x', 'URI:spiffe://example.org/agent/x').certFile, '--key', svid.keyFile, '--', 'true']);
    expect(wrong.stderr).toContain('does not carry spiffe://example.org/agent/ci');
    expect(h.upstream.requests.filter((r) => r.headers.authorization === `Bearer ${h.canary}`)).toHaveLength(2);
    } finally {
      await h.close();
    }
    const { parseConfig, ConfigErrors } = await import('../../src/config/index.js');
    const errs = (text: string): string[] => { try { parseConfig(text, '/c/k.yaml'); return []; } catch (e) { if (e instanceof ConfigErrors) return e.errors.map((x) => x.message); throw e; } };
    expect(errs('version: 1\nlisten_tls: { listen: "127.0.0.1:0", cert_file: c, key_file: k, client_ca_file: b }\nsecrets: {}\n')[0]).toContain('listen_tls: needs a clients: section');
    expect(errs('version: 1\nsecrets: {}\nclients:\n  a: { spiffe_id: "spiffe://Example.org/x", secrets: [A] }\n')[0]).toContain('must be a SPIFFE ID');
    expect(errs(`version: 1\nsecrets: {}\nclients:\n  a: { spiffe_id: "${ID}", token_sha256: "${'a'.repeat(64)}", secrets: [A] }\n`).join('\n')).toContain('has both token_sha256 and spiffe_id');
  });
});
