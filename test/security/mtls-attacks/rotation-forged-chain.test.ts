import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { trustDomain } from '../../helpers/spiffe-certs.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack on the row-141 fix: chainTrusted() walks the chain Node reports, which Node links from the certificates
 * the peer sent by name and key identifier only, and returns true as soon as ANY certificate in it is an anchor
 * (by fingerprint). During a CA rotation the bundle holds the old and the next CA. An agent whose SVID the old CA
 * issued sends, after its leaf, a bridge certificate (old CA's subject and SKID, "issued" by the next CA's name and
 * key id, signed by nobody) and the next CA's public certificate. The handshake verifies leaf -> old CA; Node
 * reports leaf -> bridge -> next CA. When the bundle drops the old CA, chainTrusted finds the next CA in the list
 * and the connection stays, served, until the leaf's notAfter.
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ossl = (args: string[]): string => execFileSync('openssl', args, { stdio: 'pipe' }).toString();
const skidOf = (f: string): string => ossl(['x509', '-in', f, '-noout', '-ext', 'subjectKeyIdentifier']).split('\n')[1]?.trim() as string;

describe('bundle rotation: a connection verified by the removed CA carries the next CA in a forged chain', () => {
  it('is closed when the bundle drops its CA', async () => {
    const w = tempWorld('rot-forged');
    const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
    const next = trustDomain(path.join(w.dir, 'next'), 'example.org');
    const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
    mkdirSync(path.join(w.dir, 'live'));
    const bundle = path.join(w.dir, 'live', 'bundle.pem');
    writeFileSync(bundle, td.caPem + next.caPem); // rotation: both published
    // The forged bridge: a throwaway "next CA" (next's subject and SKID, the attacker's key) signs a cert with the old
    // CA's subject and SKID. Only public facts of the two CAs are used.
    const d = w.dir;
    ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${d}/fn.key`, '-out', `${d}/fn.pem`, '-subj', '/CN=example.org', '-days', '3',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-addext', `subjectKeyIdentifier=${skidOf(next.caFile)}`, '-addext', 'authorityKeyIdentifier=none']);
    ossl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${d}/br.key`, '-out', `${d}/br.csr`, '-subj', '/CN=example.org']);
    writeFileSync(`${d}/br.ext`, `basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\nsubjectKeyIdentifier=${skidOf(td.caFile)}\nauthorityKeyIdentifier=keyid:always\n`);
    ossl(['x509', '-req', '-in', `${d}/br.csr`, '-CA', `${d}/fn.pem`, '-CAkey', `${d}/fn.key`, '-CAcreateserial', '-out', `${d}/br.pem`, '-days', '3', '-extfile', `${d}/br.ext`]);
    const h = await startHarness({
      top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${bundle} }
clients:
  ci: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [TEST_API_KEY] }`,
    });
    try {
      const tlsUrl = /TLS listener: (https:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout())?.[1] as string;
      const svid = td.issue('ci', 'URI:spiffe://example.org/agent/ci');
      const chain = readFileSync(svid.certFile, 'utf8') + readFileSync(`${d}/br.pem`, 'utf8') + next.caPem;
      const agent = new ProxyAgent({ uri: tlsUrl, proxyTls: { cert: chain, key: readFileSync(svid.keyFile), ca: td.caPem }, requestTls: { ca: h.caPem } });
      const ask = (): Promise<number | string> => request('https://api.example.test/v1/echo', { dispatcher: agent, headers: { authorization: `Bearer ${PLACEHOLDER}` } })
        .then(async (r) => { await r.body.text(); return r.statusCode; }, (e: Error) => e.message);
      expect(await ask()).toBe(200);
      const before = h.upstream.requests.filter((r) => r.headers.authorization === `Bearer ${h.canary}`).length;
      copyFileSync(next.caFile, bundle); // the rotation completes: the old CA is gone
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
