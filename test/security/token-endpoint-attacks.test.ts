import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

/*
 * Outside review of issue #32, kept as a regression test: what keyswap sends to a token endpoint (issue #32, mint/sent-ledger.ts), where the token endpoint
 * is a host the agent reaches through keyswap but the client secret is bound elsewhere (Entra: the token endpoint
 * is login.microsoftonline.com, the API graph.microsoft.com). The ledger records the Basic token and its decoded
 * "form(id):form(secret)" string, never the client secret on its own, so a token endpoint that shows the client
 * credentials it parsed out of Basic (as RFC 6749 §2.3.1 has a server parse them) gives the agent the secret.
 */

const TOKEN_HOST = 'login.example.test';
const API_HOST = 'graph.example.test';
const CLIENT_SECRET = `Qx7~8Q.lk_${randomBytes(9).toString('base64url')}-Z9~z`;
const CLIENT_ID = 'agent~client.id';
let lastBasic: { client_id: string; client_secret: string; as_received: string } | null = null;

let h: Harness;
let server: https.Server;

beforeAll(async () => {
  const testCa = createTestCa();
  const leaf = testCa.issue([TOKEN_HOST, API_HOST]);
  server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      const host = (req.headers.host ?? '').split(':')[0];
      if (host === TOKEN_HOST && req.method === 'POST' && req.url === '/oauth2/token') {
        const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        if (basic !== undefined) {
          const decoded = Buffer.from(basic, 'base64').toString('utf8');
          const colon = decoded.indexOf(':');
          const form = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
          // RFC 6749 §2.3.1: each part form-decoded.
          lastBasic = { client_id: form(decoded.slice(0, colon)), client_secret: form(decoded.slice(colon + 1)), as_received: decoded.slice(colon + 1) };
        }
        return send(200, { access_token: `at-${randomBytes(12).toString('hex')}`, token_type: 'Bearer', expires_in: 3600 });
      }
      if (host === TOKEN_HOST && req.url === '/debug/last-client') return send(200, lastBasic ?? {});
      if (host === API_HOST) return send(200, { ok: true });
      send(404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  h = await startHarness({
    testCa,
    resolve: { [`${TOKEN_HOST}:443`]: `127.0.0.1:${port}`, [`${API_HOST}:443`]: `127.0.0.1:${port}` },
    secretValues: { CLIENT_ID, CLIENT_SECRET, OTHER: `other-${randomBytes(12).toString('hex')}` },
    secrets: `
  ENTRA:
    placeholder: "entra-PLACEHOLDER-review-0123456789ab"
    inject: { type: oauth2_client_credentials, token_url: "https://${TOKEN_HOST}/oauth2/token", client_auth_method: basic, client_id_secret: CLIENT_ID, client_secret_secret: CLIENT_SECRET }
    bindings: [{ host: ${API_HOST}, methods: [GET], paths: ["/v1/**"] }]
  OTHER:
    placeholder: "other-PLACEHOLDER-review-0123456789ab"
    inject: { header: x-other, format: "{OTHER}" }
    bindings: [{ host: ${TOKEN_HOST}, methods: [GET], paths: ["/debug/**"] }]
`,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await new Promise((r) => server?.close(r));
});

describe('a token endpoint the agent reaches (bound for another secret) shows the Basic client credentials it parsed', () => {
  it('the client secret alone (form-decoded, and as received) does not reach the agent', async () => {
    const api = await curlVia(h, `https://${API_HOST}/v1/me`, { headers: ['Authorization: Bearer entra-PLACEHOLDER-review-0123456789ab'] });
    expect(api.status, api.stderr + api.body).toBe(200);
    expect(lastBasic?.client_secret).toBe(CLIENT_SECRET);
    const r = await curlVia(h, `https://${TOKEN_HOST}/debug/last-client`);
    expect(r.status, r.stderr).toBe(200);
    // eslint-disable-next-line no-console
    console.log('agent received:', r.body);
    const shown = JSON.parse(r.body) as { client_secret?: string; as_received?: string };
    expect(shown.client_secret).not.toBe(CLIENT_SECRET);
    expect(decodeURIComponent(shown.as_received ?? '')).not.toBe(CLIENT_SECRET);
  });
});
