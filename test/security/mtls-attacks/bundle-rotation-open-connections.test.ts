import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { trustDomain } from '../../helpers/spiffe-certs.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack: the operator (or SPIRE) drops a CA from client_ca_file, e.g. the one an attacker stole. keyswap reloads
 * the bundle within a second and refuses new handshakes chained to it, but a connection that was verified under
 * the old bundle keeps its identity: peerIdentity() trusts socket.authorized (set once, at the handshake) and
 * LiveClients only knows about client config changes and expiries. The agent keeps getting the secret on its
 * open keep-alive connection until the certificate's notAfter (a day here), unlike a client removed by a reload.
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a CA removed from the bundle keeps its open connections', () => {
  it('after the bundle stops trusting the agent\'s CA, its open connection gets no more secrets', async () => {
    const w = tempWorld('bundle-rot');
    const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
    const next = trustDomain(path.join(w.dir, 'next'), 'example.org');
    const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
    mkdirSync(path.join(w.dir, 'live'));
    const bundle = path.join(w.dir, 'live', 'bundle.pem');
    copyFileSync(td.caFile, bundle);
    const h = await startHarness({
      top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${bundle} }
clients:
  ci: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [TEST_API_KEY] }`,
    });
    try {
      const tlsUrl = /TLS listener: (https:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout())?.[1] as string;
      const svid = td.issue('ci', 'URI:spiffe://example.org/agent/ci');
      const agent = new ProxyAgent({ uri: tlsUrl, proxyTls: { cert: readFileSync(svid.certFile), key: readFileSync(svid.keyFile), ca: td.caPem }, requestTls: { ca: h.caPem } });
      const ask = (): Promise<number | string> => request('https://api.example.test/v1/echo', { dispatcher: agent, headers: { authorization: `Bearer ${PLACEHOLDER}` } })
        .then(async (r) => { await r.body.text(); return r.statusCode; }, (e: Error) => e.message);
      expect(await ask()).toBe(200);
      const before = h.upstream.requests.filter((r) => r.headers.authorization === `Bearer ${h.canary}`).length;
      // The bundle now trusts only `next`: td's certificates no longer verify (a new handshake gets 407).
      copyFileSync(next.caFile, bundle);
      await sleep(2_500);
      expect(h.stdout() + h.stderr()).toContain('TLS listener certificates reloaded');
      const after = await ask();
      const leaked = h.upstream.requests.filter((r) => r.headers.authorization === `Bearer ${h.canary}`).length - before;
      expect({ after, leaked }, 'the connection verified by the removed CA still gets the secret').not.toEqual({ after: 200, leaked: 1 });
      await agent.close();
    } finally {
      await h.close();
    }
  });
});
