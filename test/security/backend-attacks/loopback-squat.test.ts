import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig } from '../../../src/config/index.js';
import { curlVia } from '../../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../../helpers/harness.js';
import { createTestCa } from '../../helpers/test-ca.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * Attack on issue #26 (a helper's finding): a backend address of plain http on loopback (Vault Agent's listener, a
 * Connect server) authenticates nothing: any local user that takes the port while the real listener is down
 * receives keyswap's token and answers with values of its choosing, which keyswap would inject. Now every backend
 * keyswap sends a credential to is https, and a squatter without a certificate the configured CA signed gets a
 * failed handshake: no request, no token.
 */
function errorsOf(backend: string): string[] {
  try {
    parseConfig(`version: 1\nbackend: ${backend}\nsecrets: {}\n`, '/c/k.yaml');
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}

describe('a squatter on a backend\'s loopback port', () => {
  it('plain http is refused for every backend that carries a credential, loopback included', () => {
    expect(errorsOf('{ type: vault, config: { address: "http://127.0.0.1:8200", auth: { method: token, token_file: /t } } }')[0]).toMatch(/backend\.config\.address: 'http:\/\/127\.0\.0\.1:8200' must be https:\/\//);
    expect(errorsOf('{ type: onepassword, config: { url: "http://localhost:8080", token_file: /t, vault: A } }')[0]).toMatch(/backend\.config\.url: .* must be https:\/\//);
    expect(errorsOf('{ type: aws_secrets_manager, config: { region: eu-west-1, endpoint: "http://127.0.0.1:4566" } }')[0]).toMatch(/backend\.config\.endpoint: .* must be https:\/\//);
    expect(errorsOf('{ type: file, config: { key_kms: "aws_kms://arn:aws:kms:eu-west-1:123456789012:key/x", kms: { endpoint: "http://10.0.0.5:4566" } } }')[0]).toMatch(/backend\.config\.kms\.endpoint: .* must be https:\/\//);
  });

  it('a squatter with a certificate of its own never sees the Vault token, and its values are never injected', async () => {
    const seen: string[] = [];
    const rogue = createTestCa('rogue CA').issue(['127.0.0.1']);
    const squatter = https.createServer({ cert: rogue.certPem, key: rogue.keyPem }, (req, res) => {
      seen.push(String(req.headers['x-vault-token'] ?? req.url));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { ttl: 3600, renewable: false, data: { value: 'agent-chosen-value' }, metadata: { version: 1 } } }));
    });
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const port = (squatter.address() as AddressInfo).port;
    const w = tempWorld('squat');
    const realCa = createTestCa('the real Vault CA');
    const h = await startHarness({
      backend: `backend: { type: vault, config: { address: "https://127.0.0.1:${port}", ca_file: ${w.write('ca.pem', realCa.certPem)}, prefix: "keyswap/", auth: { method: token, token_file: ${w.write('t', 'hvs.KEYSWAP-REAL-VAULT-TOKEN', 0o600)} } } }`,
    });
    try {
      const r = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect({ seen, status: r.status, injected: h.upstream.requests.at(-1)?.headers.authorization ?? null }).toEqual({ seen: [], status: 503, injected: null });
      expect(h.stdout() + h.stderr()).not.toContain('hvs.KEYSWAP-REAL-VAULT-TOKEN');
    } finally {
      await h.close();
      squatter.close();
    }
  });
});
