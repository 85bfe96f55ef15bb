import { generateKeyPairSync, randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { leaksIn } from '../helpers/secret-forms.js';
import { createTestCa } from '../helpers/test-ca.js';

/*
 * Issue #32, the third review: what keyswap *sends* to a token endpoint is scrubbed from that destination's
 * responses. Here the token endpoint and the bound API are one host (GitHub's default: api.github.com is both), and
 * the host has a debugging route that shows the last token request it received — headers as received, the form body,
 * and the Basic credentials decoded as a server decodes them. The agent reads it through keyswap and must find no
 * App JWT, no service-account assertion, and no client secret in any spelling: the form-encoded one RFC 6749 §2.3.1
 * puts inside Basic (Entra and Auth0 secrets hold `~ . _ -`) included.
 */

const HOST = 'id.example.test';
const CLIENT_SECRET = `Qx7~8Q.lk_${randomBytes(9).toString('base64url')}-Z9~z`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const APP_KEY = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const SA_KEY = JSON.stringify({ type: 'service_account', client_email: 'agent@proj.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), private_key_id: 'kid-1' });

/** The last token request each route saw, and every credential the endpoint received. */
let last: Record<string, unknown> = {};
const received = new Set<string>();
let h: Harness;
let server: https.Server;

beforeAll(async () => {
  const testCa = createTestCa();
  const leaf = testCa.issue([HOST]);
  server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const auth = req.headers.authorization ?? '';
      const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      if (req.method === 'POST' && (req.url === '/oauth2/token' || /^\/app\/installations\/\d+\/access_tokens$/.test(req.url ?? ''))) {
        const form = Object.fromEntries(new URLSearchParams(body));
        const basic = /^Basic (.+)$/.exec(auth)?.[1];
        last = { route: req.url, authorization: auth, form, raw_body: body, decoded_basic: basic === undefined ? null : Buffer.from(basic, 'base64').toString('utf8') };
        // The credentials in it: the Authorization token and the credential parameters (grant_type, scope and the
        // client id are public).
        for (const v of [auth.replace(/^\S+ /, ''), form.client_secret, form.assertion, form.client_assertion]) if (v) received.add(v);
        if (req.url?.startsWith('/app/')) return send(201, { token: `ghs_${randomBytes(18).toString('hex')}`, expires_at: new Date(Date.now() + 3600_000).toISOString() });
        return send(200, { access_token: `at-${randomBytes(12).toString('hex')}`, token_type: 'Bearer', expires_in: 3600 });
      }
      if (req.url === '/debug/last-token-request') return send(200, last);
      send(404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  h = await startHarness({
    testCa,
    resolve: { [`${HOST}:443`]: `127.0.0.1:${(server.address() as AddressInfo).port}` },
    secretValues: { APP_KEY, SA_KEY, CLIENT_ID: 'agent~client.id', CLIENT_SECRET },
    secrets: `
  GH_APP:
    placeholder: "ghs-PLACEHOLDER-token-echo-0123456789"
    inject: { type: github_app, app_id: "4242", installation_id: "7", private_key_secret: APP_KEY, api_base_url: "https://${HOST}" }
    bindings: [{ host: ${HOST}, methods: [GET], paths: ["/debug/**"] }]
  GOOGLE:
    placeholder: "ya29-PLACEHOLDER-token-echo-0123456789"
    inject: { type: google_service_account, service_account_key_secret: SA_KEY, scopes: "https://www.googleapis.com/auth/cloud-platform", token_url: "https://${HOST}/oauth2/token" }
    bindings: [{ host: ${HOST}, methods: [GET], paths: ["/debug/**"] }]
  ENTRA:
    placeholder: "entra-PLACEHOLDER-token-echo-012345678"
    inject: { type: oauth2_client_credentials, token_url: "https://${HOST}/oauth2/token", client_auth_method: basic, client_id_secret: CLIENT_ID, client_secret_secret: CLIENT_SECRET }
    bindings: [{ host: ${HOST}, methods: [GET], paths: ["/debug/**"] }]
  ENTRA_POST:
    placeholder: "entrapost-PLACEHOLDER-token-echo-012345"
    inject: { type: oauth2_client_credentials, token_url: "https://${HOST}/oauth2/token", client_id_secret: CLIENT_ID, client_secret_secret: CLIENT_SECRET, scopes: "read write" }
    bindings: [{ host: ${HOST}, methods: [GET], paths: ["/debug/**"] }]
`,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await new Promise((r) => server?.close(r));
});

describe('a token endpoint that echoes its request gives the agent nothing keyswap sent it', () => {
  it.each([
    ['the GitHub App JWT (Bearer, signed with the App key)', 'ghs-PLACEHOLDER-token-echo-0123456789', '/app/installations/7/access_tokens'],
    ['the Google service-account assertion (form body)', 'ya29-PLACEHOLDER-token-echo-0123456789', '/oauth2/token'],
    ['the client secret inside Basic, form-encoded first as RFC 6749 says', 'entra-PLACEHOLDER-token-echo-012345678', '/oauth2/token'],
    ['the client secret in the form body', 'entrapost-PLACEHOLDER-token-echo-012345', '/oauth2/token'],
  ])('%s', async (_what, placeholder, route) => {
    const r = await curlVia(h, `https://${HOST}/debug/last-token-request`, { headers: [`Authorization: Bearer ${placeholder}`] });
    expect(r.status, r.body).toBe(200);
    const shown = JSON.parse(r.body) as { route: string };
    // The endpoint did show this secret's token request (with its credentials replaced).
    expect(shown.route).toBe(route);
    const leaks = [...received, CLIENT_SECRET, encodeURIComponent(CLIENT_SECRET), APP_KEY].flatMap((v) => leaksIn(r.body, v).map((f) => `${v.slice(0, 12)}…: ${f}`));
    expect(leaks).toEqual([]);
    expect(r.body).toMatch(/PLACEHOLDER/);
  });

  it('what keyswap sent is also absent from its logs and audit', () => {
    const out = h.stdout() + h.stderr() + h.auditText();
    expect([...received].flatMap((v) => leaksIn(out, v))).toEqual([]);
  });
});
