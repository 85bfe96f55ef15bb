import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRETS, PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { trustDomain } from '../../helpers/spiffe-certs.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack: an agent holding ANY SVID the bundle verifies (here: client `attacker`, which may use no secret) opens the
 * TLS listener with it on TLS 1.2, then renegotiates presenting a self-signed certificate that claims the victim's
 * SPIFFE ID. Node verifies the new chain (it fails: authorizationError is set) but never resets socket.authorized,
 * and getPeerCertificate() now returns the self-signed one; peerIdentity() re-reads both for every request.
 * The C client (OpenSSL, client-initiated renegotiation) is compiled here with gcc.
 */
describe('TLS 1.2 renegotiation swaps the client certificate after verification', () => {
  it('a forged self-signed SVID presented in a renegotiation is taken as the victim client', async () => {
    const w = tempWorld('reneg');
    const td = trustDomain(path.join(w.dir, 'td'), 'example.org');
    const server = td.issue('keyswap', 'IP:127.0.0.1,URI:spiffe://example.org/keyswap');
    const mine = td.issue('attacker', 'URI:spiffe://example.org/agent/attacker');
    // The forgery: self-signed, never verified, claiming the victim's ID.
    const forgedKey = path.join(w.dir, 'forged.key');
    const forgedCert = path.join(w.dir, 'forged.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', forgedKey, '-out', forgedCert, '-subj', '/CN=forged', '-days', '1',
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'subjectAltName=URI:spiffe://example.org/agent/victim'], { stdio: 'pipe' });
    const bin = path.join(w.dir, 'reneg-client');
    execFileSync('gcc', ['-O1', '-o', bin, path.join(__dirname, 'reneg-client.c'), '-lssl', '-lcrypto'], { stdio: 'pipe' });

    const h = await startHarness({
      top: `listen_tls: { listen: "127.0.0.1:0", cert_file: ${server.certFile}, key_file: ${server.keyFile}, client_ca_file: ${td.caFile} }
clients:
  attacker: { spiffe_id: "spiffe://example.org/agent/attacker", secrets: [OTHER_KEY] }
  victim: { spiffe_id: "spiffe://example.org/agent/victim", secrets: [TEST_API_KEY] }`,
      secretValues: { OTHER_KEY: 'other-value' },
      secrets: `${DEFAULT_SECRETS}
  OTHER_KEY:
    placeholder: "sk-OTHER-PLACEHOLDER-0123456789abcdef"
    inject: { header: X-Other, format: "{OTHER_KEY}" }
    bindings:
      - { host: other.example.test }
`,
    });
    try {
      const m = /TLS listener: https:\/\/127\.0\.0\.1:(\d+)/.exec(h.stdout());
      if (!m) throw new Error(`no TLS listener announced: ${h.stdout()}`);
      const port = m[1] as string;
      const send = (certs: string[]): Promise<string> => new Promise((resolve) => {
        const p = spawn(bin, ['127.0.0.1', port, ...certs]);
        let out = '';
        p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
        p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
        p.on('close', () => resolve(out));
        p.stdin.end(`GET http://plain.example.test/v1/echo HTTP/1.1\r\nHost: plain.example.test\r\nAuthorization: Bearer ${PLACEHOLDER}\r\nConnection: close\r\n\r\n`);
      });
      // Control: the attacker's own certificate on both handshakes gets nothing (its client may use OTHER_KEY only).
      const own = await send([mine.certFile, mine.keyFile, mine.certFile, mine.keyFile]);
      expect(own).not.toContain(h.canary);
      expect(h.plainUpstream.requests.some((r) => r.headers.authorization === `Bearer ${h.canary}`)).toBe(false);

      const out = await send([mine.certFile, mine.keyFile, forgedCert, forgedKey]);
      // Expected: renegotiation refused, or the unverified certificate identifies nobody. Measured: the request is
      // audited as client `victim`, TEST_API_KEY is injected (the echo comes back scrubbed).
      expect(out).not.toContain(h.canary);
      expect(h.auditRecords().filter((r) => r.type === 'inject_decision' && r.client === 'victim').map((r) => r.decision), 'requests taken as victim').toEqual([]);
      expect(h.plainUpstream.requests.some((r) => r.headers.authorization === `Bearer ${h.canary}`), 'the upstream got the victim\'s secret').toBe(false);
    } finally {
      await h.close();
    }
  });
});
