import { generateKeyPairSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { cliCollect } from '../helpers/cli.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';

// Issue #14: credentials keyswap mints from backend secrets at a token endpoint fixed by config, against local
// authorities that count their calls and check what they are sent.
const PH_CC = 'oauth-cc-PLACEHOLDER-0123456789abcdef';
const PH_BASIC = 'oauth-basic-PLACEHOLDER-0123456789abcdef';
const PH_GH = 'github-app-PLACEHOLDER-0123456789abcdef';
const PH_JWT = 'jwt-PLACEHOLDER-0123456789abcdefghij';
const PH_DOWN = 'oauth-down-PLACEHOLDER-0123456789abcdef';
const real = (label: string): string => `${label}-${randomBytes(10).toString('hex')}`;
const SECRETS = {
  CC_CLIENT_ID: 'keyswap-test-client',
  CC_CLIENT_SECRET: real('cc-secret'),
  B_CLIENT_ID: 'basic client/with:odd chars',
  B_CLIENT_SECRET: real('b-secret'),
};
const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwtKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const GH_APP_KEY = app.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(); // GitHub's own format
const JWT_KEY = jwtKey.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SA_EMAIL = 'agent@keyswap-test.iam.gserviceaccount.com';
// A service account key file as Google issues it; its token_uri points elsewhere and must not be followed.
const SA_KEY = JSON.stringify({ type: 'service_account', client_email: SA_EMAIL, private_key_id: 'k1', private_key: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), token_uri: 'https://evil.example.test/token' });
const PH_SA = 'google-sa-PLACEHOLDER-0123456789abcdef';

let h: Harness;
let auth: FakeAuthorities;
beforeAll(async () => {
  const testCa = createTestCa();
  auth = await startFakeAuthorities({
    tls: testCa.issue(['auth.example.test']),
    clients: { [SECRETS.CC_CLIENT_ID]: SECRETS.CC_CLIENT_SECRET, [SECRETS.B_CLIENT_ID]: SECRETS.B_CLIENT_SECRET },
    github: { appId: '12345', installationId: '678', publicKey: app.publicKey },
    serviceAccount: { email: SA_EMAIL, publicKey: sa.publicKey, audience: 'https://auth.example.test/oauth2/token' },
    delayMs: 200,
  });
  h = await startHarness({
    testCa,
    resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}`, 'down.example.test:443': '127.0.0.1:1' },
    secretValues: { ...SECRETS, GH_APP_KEY, JWT_KEY, SA_KEY },
    secrets: `
  CC_TOKEN:
    placeholder: "${PH_CC}"
    inject:
      type: oauth2_client_credentials
      token_url: "https://auth.example.test/oauth2/token"
      client_auth_method: body_post
      client_id_secret: CC_CLIENT_ID
      client_secret_secret: CC_CLIENT_SECRET
      scopes: [read, write]
    bindings: [{ host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }]
  CC_BASIC:
    placeholder: "${PH_BASIC}"
    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.test/oauth2/token", client_auth_method: basic, client_id_secret: B_CLIENT_ID, client_secret_secret: B_CLIENT_SECRET }
    bindings: [{ host: other.example.test }]
  GH_APP:
    placeholder: "${PH_GH}"
    inject: { type: github_app, app_id: "12345", installation_id: 678, private_key_secret: GH_APP_KEY, api_base_url: "https://auth.example.test" }
    bindings: [{ host: api.example.test }]
  JWT_RS:
    placeholder: "${PH_JWT}"
    inject: { type: jwt_bearer, signing_key_secret: JWT_KEY, algorithm: RS256, issuer: keyswap-test, audience: "https://api.example.test", ttl_seconds: 300, extra_claims: { scope: "read:data" } }
    bindings: [{ host: api.example.test }]
  GOOGLE_SA:
    placeholder: "${PH_SA}"
    inject: { type: google_service_account, service_account_key_secret: SA_KEY, scopes: ["https://www.googleapis.com/auth/cloud-platform"], token_url: "https://auth.example.test/oauth2/token" }
    bindings: [{ host: api.example.test }]
  DOWN_TOKEN:
    placeholder: "${PH_DOWN}"
    inject: { type: oauth2_client_credentials, token_url: "https://down.example.test/token", client_id_secret: CC_CLIENT_ID, client_secret_secret: CC_CLIENT_SECRET }
    bindings: [{ host: api.example.test }]
`,
  });
});
afterAll(async () => {
  await h.close();
  await auth.close();
});

const echo = (host: string, header: string) => curlVia(h, `https://${host}/v1/echo`, { headers: [`Authorization: ${header}`] });
const sentAuthorization = (): string => String(h.upstream.requests.at(-1)?.headers.authorization ?? '');
const everySecret = (): string[] => [...Object.values(SECRETS).filter((v) => v.length > 20), GH_APP_KEY.split('\n')[1] ?? '', JWT_KEY.split('\n')[1] ?? '', SA_KEY.slice(200, 260), ...auth.issued];

describe('oauth2_client_credentials', () => {
  it('exchanges the client id and secret (form body) once, audits the exchange before use, injects the token and scrubs its echo', async () => {
    const r = await echo('api.example.test', `Bearer ${PH_CC}`);
    expect(r.status, r.body).toBe(200);
    const sent = sentAuthorization();
    expect(sent).toMatch(/^Bearer at-\d+-[0-9a-f]{24}$/);
    expect(auth.issued.has(sent.slice('Bearer '.length))).toBe(true);
    expect(auth.calls.filter((c) => c.clientId === SECRETS.CC_CLIENT_ID)).toEqual([{ endpoint: 'oauth2', clientId: SECRETS.CC_CLIENT_ID, auth: 'body' }]);
    expect(r.body).toContain(PH_CC); // the echo comes back as the placeholder
    const records = h.auditRecords();
    const started = records.findIndex((e) => e.type === 'token_exchange' && e.secret_name === 'CC_TOKEN' && e.outcome === 'started');
    const exchange = records.findIndex((e) => e.type === 'token_exchange' && e.secret_name === 'CC_TOKEN' && e.outcome === 'minted');
    expect(started).toBeGreaterThanOrEqual(0);
    expect(started).toBeLessThan(exchange);
    const decision = records.findIndex((e) => e.type === 'inject_decision' && e.secret_name === 'CC_TOKEN');
    expect(records[exchange]).toMatchObject({ minter: 'oauth2_client_credentials', endpoint: 'auth.example.test', outcome: 'minted', trigger: 'request', reason: null });
    expect(exchange).toBeGreaterThanOrEqual(0);
    expect(exchange).toBeLessThan(decision);
    // The upstream saw the request only after both records were durable.
    expect(h.upstream.requests.at(-1)?.auditAtArrival).toContain('"token_exchange"');
  });

  it('a second request uses the cached token: no second exchange', async () => {
    const before = auth.calls.length;
    await echo('api.example.test', `Bearer ${PH_CC}`);
    await echo('api.example.test', `Bearer ${PH_CC}`);
    expect(auth.calls.length).toBe(before);
  });

  it('100 concurrent cold requests (HTTP Basic client authentication) cause one token call', async () => {
    const agent = new ProxyAgent({ uri: h.proxyUrl, requestTls: { ca: h.caPem } });
    try {
      const statuses = await Promise.all(Array.from({ length: 100 }, async () => {
        const res = await request('https://other.example.test/v1/echo', { dispatcher: agent, headers: { authorization: `Bearer ${PH_BASIC}` } });
        await res.body.text();
        return res.statusCode;
      }));
      expect(statuses.every((s) => s === 200)).toBe(true);
    } finally {
      await agent.close();
    }
    expect(auth.calls.filter((c) => c.clientId === SECRETS.B_CLIENT_ID)).toEqual([{ endpoint: 'oauth2', clientId: SECRETS.B_CLIENT_ID, auth: 'basic' }]);
  });

  it('a token endpoint that is down: 503 naming the cause category, nothing sent upstream, the failure audited', async () => {
    const before = h.upstream.requests.length;
    const r = await echo('api.example.test', `Bearer ${PH_DOWN}`);
    expect(r.status).toBe(503);
    expect(r.body).toBe('keyswap: could not obtain a credential from its token endpoint; nothing was sent\n');
    expect(h.upstream.requests.length).toBe(before);
    expect(h.auditRecords().find((e) => e.type === 'token_exchange' && e.secret_name === 'DOWN_TOKEN' && e.outcome === 'failed')).toMatchObject({ outcome: 'failed', reason: 'unreachable', status: null });
  });
});

describe('github_app', () => {
  it('signs an App JWT the API verifies with the public key, exchanges it, injects `token <installation token>`', async () => {
    const r = await echo('api.example.test', `token ${PH_GH}`);
    expect(r.status, r.body).toBe(200);
    expect(sentAuthorization()).toMatch(/^token ghs_[0-9a-f]{36}$/);
    expect(auth.calls.filter((c) => c.endpoint === 'github')).toHaveLength(1);
    expect(r.body).not.toContain('ghs_');
  });
});

describe('google_service_account', () => {
  it('exchanges an RS256 assertion from the key file at the configured endpoint (never the key file’s token_uri)', async () => {
    const r = await echo('api.example.test', `Bearer ${PH_SA}`);
    expect(r.status, r.body).toBe(200);
    expect(sentAuthorization()).toMatch(/^Bearer ya29\.[0-9a-f]{40}$/);
    expect(h.auditRecords().find((e) => e.type === 'token_exchange' && e.secret_name === 'GOOGLE_SA' && e.outcome === 'minted')).toMatchObject({ minter: 'google_service_account', endpoint: 'auth.example.test', outcome: 'minted' });
    expect(r.body).not.toContain('ya29.');
  });
});

describe('jwt_bearer', () => {
  it('injects a JWT signed with the configured key and claims', async () => {
    const r = await echo('api.example.test', `Bearer ${PH_JWT}`);
    expect(r.status, r.body).toBe(200);
    const jwt = sentAuthorization().slice('Bearer '.length);
    const { payload } = await jwtVerify(jwt, jwtKey.publicKey, { issuer: 'keyswap-test', audience: 'https://api.example.test' });
    expect(payload.scope).toBe('read:data');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(300);
    expect(r.body).not.toContain(jwt);
  });
});

describe('doctor and explain know the minted credentials', () => {
  // Not blocking: the authorities run in this process, and a blocking spawn would stall them.
  const cli = async (args: string[]): Promise<string> => {
    const env = Object.fromEntries(Object.entries({ ...SECRETS, GH_APP_KEY, JWT_KEY, SA_KEY }).map(([k, v]) => [`KEYSWAP_SECRET_${k}`, v]));
    const r = await cliCollect([...args, '--config', path.join(h.dir, 'keyswap.yaml')], { cwd: h.dir, env: { HOME: h.dir, ...env } });
    return r.stdout + r.stderr;
  };

  it('explain names the injector that would run and where it mints', async () => {
    const out = await cli(['explain', 'GET', 'https://api.example.test/v1/x', '-H', `Authorization: Bearer ${PH_CC}`]);
    expect(out).toContain('CC_TOKEN: injected at header authorization (oauth2_client_credentials: minted at auth.example.test');
  });

  it('doctor probes each token endpoint without minting; --exchange mints once, printing no credential', async () => {
    const before = auth.calls.length;
    const probe = await cli(['doctor']);
    expect(probe).toContain('ok CC_TOKEN: token endpoint auth.example.test answers over verified TLS');
    expect(probe).toMatch(/!! DOWN_TOKEN: token endpoint down\.example\.test cannot be reached \(unreachable\)/);
    expect(auth.calls.length).toBe(before);
    const exchanged = await cli(['doctor', '--exchange']);
    expect(exchanged).toContain('ok CC_TOKEN: minted a credential at auth.example.test');
    expect(exchanged).toContain('ok GH_APP: minted a credential at auth.example.test');
    expect(auth.calls.length).toBeGreaterThan(before);
    for (const s of everySecret()) expect(exchanged.includes(s)).toBe(false);
  });
});

describe('what never leaves keyswap', () => {
  it('no client secret, private key or minted credential in any response, log or audit line', () => {
    const outputs = [h.auditText(), h.stdout(), h.stderr()];
    for (const s of everySecret()) for (const o of outputs) expect(o.includes(s), s.slice(0, 12)).toBe(false);
  });
});
