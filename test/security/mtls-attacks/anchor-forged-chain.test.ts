import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { trustDomain } from '../../helpers/spiffe-certs.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack on the row-138 fix: the anchor's trust domain is read from the chain Node reports
 * (getPeerCertificate(true)), which Node builds from the certificates the PEER SENT, linked by name and key
 * identifier only (X509_check_issued, no signature), not from the chain OpenSSL verified. other.org's CA (a
 * federated partner, or whoever holds its key) issues spiffe://example.org/agent/ci and sends, after it, a
 * self-signed decoy with other.org CA's subject and key identifier but a URI SAN spiffe://example.org.
 * OpenSSL verifies leaf -> other.org CA (trusted first; the decoy is ignored), Node reports leaf -> decoy, and
 * anchorOf() reads example.org: the forged ID is taken as client ci.
 */
describe('anchor trust-domain check reads the peer-sent chain', () => {
  it('other.org minting example.org/agent/ci with a decoy "anchor" appended is refused', async () => {
    const w = tempWorld('fed-decoy');
    const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
    const other = trustDomain(path.join(w.dir, 'other'), 'other.org');
    const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
    const bundle = path.join(w.dir, 'bundle.pem');
    writeFileSync(bundle, readFileSync(td.caFile, 'utf8') + readFileSync(other.caFile, 'utf8'));
    // The decoy: public facts about other.org's CA (subject, SKID) only, signed by a key of the attacker's own.
    const skid = execFileSync('openssl', ['x509', '-in', other.caFile, '-noout', '-ext', 'subjectKeyIdentifier']).toString().split('\n')[1]?.trim() as string;
    const decoy = path.join(w.dir, 'decoy.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(w.dir, 'decoy.key'), '-out', decoy, '-subj', '/CN=other.org', '-days', '3',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', `subjectKeyIdentifier=${skid}`, '-addext', 'authorityKeyIdentifier=none', '-addext', 'subjectAltName=URI:spiffe://example.org'], { stdio: 'pipe' });
    const h = await startHarness({
      top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${bundle} }
clients:
  ci: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [TEST_API_KEY] }
  partner: { spiffe_id: "spiffe://other.org/agent/partner", secrets: [TEST_API_KEY] }`,
    });
    try {
      const tlsUrl = /TLS listener: (https:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout())?.[1] as string;
      const via = (certFile: string, keyFile: string): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/echo', {
        proxy: tlsUrl, headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--proxy-cacert', td.caFile, '--proxy-cert', certFile, '--proxy-key', keyFile],
      });
      const forged = other.issue('forged', 'URI:spiffe://example.org/agent/ci');
      // Control: the plain forgery (the row-138 test) is refused.
      expect((await via(forged.certFile, forged.keyFile)).status).toBe(407);
      // The attack: the same leaf, with the decoy sent after it.
      const chain = path.join(w.dir, 'forged-chain.pem');
      writeFileSync(chain, readFileSync(forged.certFile, 'utf8') + readFileSync(decoy, 'utf8'));
      const r = await via(chain, forged.keyFile);
      expect(`${r.status} ${r.stderr}`, 'other.org minted example.org/agent/ci and was taken as ci').toMatch(/407/);
      expect(r.body).not.toContain(h.canary);
    } finally {
      await h.close();
    }
  });
});
