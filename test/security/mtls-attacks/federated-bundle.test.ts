import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { trustDomain } from '../../helpers/spiffe-certs.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack: client_ca_file holds more than one trust domain's CA (a federated bundle: spiffe-helper's
 * include_federated_domains, or two bundles concatenated). The docs promise that a certificate "of another trust
 * domain ... gets 407", but keyswap only checks that the chain ends at SOME CA of the file: the CA of other.org
 * (a federated partner, or whoever compromised it) issues spiffe://example.org/agent/ci and is taken as client ci.
 * The SPIFFE X.509-SVID spec requires the SVID to be validated against the bundle of ITS OWN trust domain.
 */
describe('a federated bundle lets one trust domain mint another\'s IDs', () => {
  it('other.org\'s CA issuing spiffe://example.org/agent/ci is refused', async () => {
    const w = tempWorld('fed');
    const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
    const other = trustDomain(path.join(w.dir, 'other'), 'other.org');
    const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
    const bundle = path.join(w.dir, 'bundle.pem');
    writeFileSync(bundle, readFileSync(td.caFile, 'utf8') + readFileSync(other.caFile, 'utf8'));
    const h = await startHarness({
      top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${bundle} }
clients:
  ci: { spiffe_id: "spiffe://example.org/agent/ci", secrets: [TEST_API_KEY] }
  partner: { spiffe_id: "spiffe://other.org/agent/partner", secrets: [TEST_API_KEY] }`,
    });
    try {
      const tlsUrl = /TLS listener: (https:\/\/127\.0\.0\.1:\d+)/.exec(h.stdout())?.[1] as string;
      const via = (cert: { certFile: string; keyFile: string }): ReturnType<typeof curlVia> => curlVia(h, 'https://api.example.test/v1/echo', {
        proxy: tlsUrl, headers: [`Authorization: Bearer ${PLACEHOLDER}`], extra: ['--proxy-cacert', td.caFile, '--proxy-cert', cert.certFile, '--proxy-key', cert.keyFile],
      });
      // Controls: each domain's own IDs work.
      expect((await via(td.issue('ci', 'URI:spiffe://example.org/agent/ci'))).status).toBe(200);
      expect((await via(other.issue('partner', 'URI:spiffe://other.org/agent/partner'))).status).toBe(200);
      // The attack: other.org's CA vouching for an example.org ID.
      const forged = await via(other.issue('forged', 'URI:spiffe://example.org/agent/ci'));
      expect(`${forged.status} ${forged.stderr}`, 'other.org minted example.org/agent/ci and was taken as ci').toMatch(/407/);
      expect(forged.body).not.toContain(h.canary);
    } finally {
      await h.close();
    }
  });
});
