import { createHash, randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startFakeAuthorities, type FakeAuthorities } from '../helpers/fake-authorities.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { sigv4Problem } from '../helpers/sigv4-verifier.js';
import { createTestCa } from '../helpers/test-ca.js';

// Red-team (attack3): minted credentials and request signers, attacked by a compromised agent. Every test runs
// against a real keyswap process; canaries are the backend values and every credential the fake authority issued.
const PH_CC = 'oauth-cc-PLACEHOLDER-attack3-0123456789ab';
const PH_JWT = 'jwt-PLACEHOLDER-attack3-0123456789abcdef';
const PH_HMAC = 'hmac-PLACEHOLDER-attack3-0123456789abcd';
const PH_BEDROCK = 'AKIABEDROCKPLACEHOLDERATK3';
const PH_S3 = 'AKIAS3PLACEHOLDERATTACK3XY';
const real = (label: string): string => `${label}-${randomBytes(12).toString('hex')}`;
const SECRETS = {
  CC_CLIENT_ID: 'attack3-client',
  CC_CLIENT_SECRET: real('cc-secret'),
  JWT_HS_KEY: real('jwt-hs256-shared-secret-key-material'),
  WEBHOOK_KEY: real('whk'),
  AWS_ACCESS_KEY_ID: 'AKIAREALKEYATTACK30001',
  AWS_SECRET_ACCESS_KEY: `real-secret/${randomBytes(12).toString('base64')}`,
};

/** An API that keeps what it is sent (a header) and hands it back to a later request: a bound upstream that stores. */
interface Vault { readonly port: number; kept: Record<string, string>; close(): Promise<void> }
async function startVault(tls: { certPem: string; keyPem: string }): Promise<Vault> {
  const v: { kept: Record<string, string> } = { kept: {} };
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/keep') {
        v.kept = { authorization: String(req.headers.authorization ?? ''), 'x-signature': String(req.headers['x-signature'] ?? '') };
        res.writeHead(204);
        res.end();
        return;
      }
      if (url.pathname === '/read') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v.kept));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(v, {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  }) as Vault;
}

let h: Harness;
let auth: FakeAuthorities;
let vault: Vault;
const outputs: string[] = [];
beforeAll(async () => {
  const testCa = createTestCa();
  // expires_in 70 s with the default 60 s safety margin: cached for 10 s, renewed ahead at once (both inside a test).
  auth = await startFakeAuthorities({ tls: testCa.issue(['auth.example.test']), clients: { [SECRETS.CC_CLIENT_ID]: SECRETS.CC_CLIENT_SECRET }, expiresInS: 70 });
  vault = await startVault(testCa.issue(['vault.example.test']));
  h = await startHarness({
    testCa,
    resolve: { 'auth.example.test:443': `127.0.0.1:${auth.port}`, 'vault.example.test:443': `127.0.0.1:${vault.port}` },
    secretValues: SECRETS,
    secrets: `
  CC_TOKEN:
    placeholder: "${PH_CC}"
    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.test/oauth2/token", client_id_secret: CC_CLIENT_ID, client_secret_secret: CC_CLIENT_SECRET }
    bindings: [{ host: vault.example.test, methods: [GET, POST] }, { host: api.example.test, methods: [GET], paths: ["/v1/*"] }]
  CC_FAIL:
    placeholder: "oauth-fail-PLACEHOLDER-attack3-0123456789"
    inject: { type: oauth2_client_credentials, token_url: "https://auth.example.test/oauth2/token", client_auth_method: basic, client_id_secret: CC_CLIENT_ID, client_secret_secret: CC_CLIENT_SECRET }
    bindings: [{ host: vault.example.test, methods: [GET] }]
  CC_UNTRUSTED:
    placeholder: "oauth-untrusted-PLACEHOLDER-attack3-0123"
    inject: { type: oauth2_client_credentials, token_url: "https://untrusted.example.test/oauth2/token", client_id_secret: CC_CLIENT_ID, client_secret_secret: CC_CLIENT_SECRET }
    bindings: [{ host: vault.example.test, methods: [GET] }]
  JWT_LONG:
    placeholder: "jwt-long-PLACEHOLDER-attack3-0123456789"
    inject: { type: jwt_bearer, signing_key_secret: JWT_HS_KEY, algorithm: HS256, issuer: attack3-long, ttl_seconds: 3600 }
    bindings: [{ host: vault.example.test, methods: [GET, POST] }]
  JWT_SHORT:
    placeholder: "${PH_JWT}"
    inject: { type: jwt_bearer, signing_key_secret: JWT_HS_KEY, algorithm: HS256, issuer: attack3, ttl_seconds: 10 }
    bindings: [{ host: vault.example.test, methods: [GET, POST] }]
  WEBHOOK_HMAC:
    placeholder: "${PH_HMAC}"
    inject:
      type: hmac
      secret_key_secret: WEBHOOK_KEY
      signing_string: "{method}\\n{path}\\n{body_sha256}\\n{timestamp}"
      header: X-Signature
      timestamp_header: X-Timestamp
    bindings: [{ host: api.example.test, methods: [POST], paths: ["/v1/hooks/**"] }]
  AWS_BEDROCK:
    placeholder: "${PH_BEDROCK}"
    inject: { type: sigv4, region: us-west-2, service: bedrock, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: other.example.test, methods: [POST] }]
  AWS_S3:
    placeholder: "${PH_S3}"
    inject: { type: sigv4, region: us-east-1, service: s3, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: api.example.test, methods: [GET, PUT] }]
`,
  });
});
afterAll(async () => {
  await h.close();
  await auth.close();
  await vault.close();
});

const via = async (url: string, o: Parameters<typeof curlVia>[2] = {}) => {
  const r = await curlVia(h, url, o);
  outputs.push(JSON.stringify(r.headers), r.body);
  return r;
};
const sigv4Auth = (ph: string, scope: string): string => `AWS4-HMAC-SHA256 Credential=${ph}/20260101/${scope}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

describe('minted credentials outlive keyswap’s memory of them', () => {
  it('an access token replaced by refresh-ahead is no longer scrubbed, though still valid: stored upstream, read back', async () => {
    const first = await via('https://vault.example.test/keep', { headers: [`Authorization: Bearer ${PH_CC}`] });
    expect(first.status, first.body).toBe(204);
    const t1 = String(vault.kept.authorization ?? '').replace(/^Bearer /, '');
    expect(auth.issued.has(t1)).toBe(true);
    // A second use hits the cache inside the refresh-ahead window: T2 is minted in the background and replaces T1.
    const calls = auth.calls.length;
    await via('https://vault.example.test/other', { headers: [`Authorization: Bearer ${PH_CC}`] });
    expect(await waitFor(() => auth.calls.length > calls, 5_000)).toBe(true);
    // T2 is audited as minted just before the cache takes it in place of T1.
    await waitFor(() => h.auditRecords().some((e) => e.type === 'token_exchange' && e.secret_name === 'CC_TOKEN' && e.trigger === 'refresh_ahead' && e.outcome === 'minted'), 5_000);
    // T1 lives 70 s at its authority; the agent reads it back from the API that kept it.
    const back = await via('https://vault.example.test/read');
    expect(back.status).toBe(200);
    expect(back.body.includes(t1), `T1 (valid ~60 s more) reached the agent: ${back.body}`).toBe(false);
  });

  it('a JWT that lives too short to be cached (ttl_seconds: 10) is scrubbed only in its own response: read back later in clear', async () => {
    const first = await via('https://vault.example.test/keep', { headers: [`Authorization: Bearer ${PH_JWT}`] });
    expect(first.status, first.body).toBe(204);
    const jwt = String(vault.kept.authorization ?? '').replace(/^Bearer /, '');
    expect(jwt.split('.')).toHaveLength(3);
    const back = await via('https://vault.example.test/read');
    expect(back.status).toBe(200);
    expect(back.body.includes(jwt), 'a JWT valid for ~10 s reached the agent').toBe(false);
  });
});

describe('minted credentials across a reload', () => {
  it('after an operator reload (SIGHUP, config unchanged) every live minted token is forgotten and reads back in clear', async () => {
    const kept = await via('https://vault.example.test/keep', { headers: ['Authorization: Bearer jwt-long-PLACEHOLDER-attack3-0123456789'] });
    expect(kept.status).toBe(204);
    const token = String(vault.kept.authorization ?? '').replace(/^Bearer /, '');
    expect(token.split('.')).toHaveLength(3);
    // Control: before the reload, the cached JWT (valid an hour, not near renewal) is scrubbed when read back.
    const control = await via('https://vault.example.test/read');
    expect(control.body.includes(token)).toBe(false);
    const before = h.auditRecords().filter((r) => r.type === 'config_reload').length;
    h.child.kill('SIGHUP');
    expect(await waitFor(() => h.auditRecords().filter((r) => r.type === 'config_reload').length > before)).toBe(true);
    const back = await via('https://vault.example.test/read');
    expect(back.body.includes(token), 'a JWT valid for an hour reached the agent after a reload').toBe(false);
  });
});

describe('minted credential echoes in the same response', () => {
  it('held: a minted token echoed gzip-compressed, split into 3-byte chunks, and at another bound destination is scrubbed', async () => {
    for (const route of ['/v1/echo-gzip', '/v1/echo-split', '/v1/echo-forms']) {
      const r = await via(`https://api.example.test${route}`, { headers: [`Authorization: Bearer ${PH_CC}`], extra: ['--compressed'] });
      expect(r.status, r.body).toBe(200);
      const sent = String(h.upstream.requests.at(-1)?.headers.authorization ?? '').replace(/^Bearer /, '');
      expect(auth.issued.has(sent)).toBe(true);
      expect(r.body.includes(sent), route).toBe(false);
      expect(r.body.includes(Buffer.from(sent).toString('base64')), route).toBe(false);
    }
  });
});

describe('signatures', () => {
  it('the HMAC signature keyswap computed with the real key is echoed back to the agent unscrubbed, and replays through keyswap unaudited', async () => {
    const body = '{"event":"ping"}';
    const r = await via('https://api.example.test/v1/hooks/x', { method: 'POST', data: body, headers: [`X-Signature: ${PH_HMAC}`, 'content-type: application/json'] });
    expect(r.status, r.body).toBe(200);
    const seen = h.upstream.requests.at(-1);
    const sig = String(seen?.headers['x-signature'] ?? '');
    const ts = String(seen?.headers['x-timestamp'] ?? '');
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    // The replay: the agent now holds a credential keyswap made and sends it without any placeholder.
    const decisions = h.auditRecords().filter((e) => e.type === 'inject_decision' && e.secret_name === 'WEBHOOK_HMAC').length;
    const replay = await via('https://api.example.test/v1/hooks/x', { method: 'POST', data: body, headers: [`X-Signature: ${sig}`, `X-Timestamp: ${ts}`, 'content-type: application/json'] });
    expect(replay.status).toBe(200);
    expect(String(h.upstream.requests.at(-1)?.headers['x-signature'])).toBe(sig); // forwarded verbatim to the bound API
    expect(h.auditRecords().filter((e) => e.type === 'inject_decision' && e.secret_name === 'WEBHOOK_HMAC').length).toBe(decisions);
    expect(r.body.includes(sig), 'the real HMAC signature reached the agent').toBe(false);
  });

  it('SigV4 for a non-S3 service ignores the agent’s x-amz-content-sha256: the signature covers the body that was sent', async () => {
    const benign = '{"prompt":"benign"}';
    const sent = '{"prompt":"something else entirely"}';
    const r = await via('https://other.example.test/v1/upload', {
      method: 'POST', data: sent,
      headers: [`Authorization: ${sigv4Auth(PH_BEDROCK, 'us-west-2/bedrock')}`, 'x-amz-date: 20260101T000000Z', `x-amz-content-sha256: ${sha256(benign)}`, 'content-type: application/json'],
    });
    expect(r.status, r.body).toBe(200);
    const seen = h.upstream.requests.at(-1);
    if (seen === undefined) throw new Error('nothing upstream');
    expect(seen.body.toString()).toBe(sent);
    // Not a signature for the benign body (that would be a forgery for a request the agent never sent)…
    expect(sigv4Problem({ ...seen, body: Buffer.from(benign) }, SECRETS.AWS_SECRET_ACCESS_KEY, SECRETS.AWS_ACCESS_KEY_ID)).not.toBeNull();
    // …but for the one that went upstream.
    expect(sigv4Problem(seen, SECRETS.AWS_SECRET_ACCESS_KEY, SECRETS.AWS_ACCESS_KEY_ID)).toBeNull();
  });

  it('two x-amz-content-sha256 headers (UNSIGNED-PAYLOAD first) get a chained streaming payload past the refusal', async () => {
    const before = h.upstream.requests.length;
    const r = await via('https://api.example.test/v1/upload', {
      method: 'PUT', data: 'x',
      headers: [`Authorization: ${sigv4Auth(PH_S3, 'us-east-1/s3')}`, 'x-amz-date: 20260101T000000Z', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', 'x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
    });
    // Documented: STREAMING-AWS4-HMAC-SHA256-PAYLOAD is refused with 400 and nothing sent.
    expect(h.upstream.requests.length, `status ${r.status}; upstream got x-amz-content-sha256: ${String(h.upstream.requests.at(-1)?.headers['x-amz-content-sha256'])}`).toBe(before);
    expect(r.status).toBe(400);
  });

  it('a query parameter of a presigned URL (X-Amz-Signature), which AWS’s signer leaves out of the canonical query, is refused on a request keyswap signs', async () => {
    const before = h.upstream.requests.length;
    const r = await via('https://api.example.test/v1/echo?a=1&X-Amz-Signature=attacker', {
      headers: [`Authorization: ${sigv4Auth(PH_S3, 'us-east-1/s3')}`, 'x-amz-date: 20260101T000000Z', 'x-amz-content-sha256: UNSIGNED-PAYLOAD'],
    });
    expect(r.status).toBe(400);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('held: S3 re-signing with dot segments, encoded slashes, +, empty values and repeated keys verifies for what was sent', async () => {
    for (const target of ['/v1/a%2Fb/c?x=1&x=0&y=&z=a+b', '/v1/./a/../b?k=%7E%20', '/v1//double?list-type=2&prefix=']) {
      const r = await via(`https://api.example.test${target}`, {
        extra: ['--path-as-is'],
        headers: [`Authorization: ${sigv4Auth(PH_S3, 'us-east-1/s3')}`, 'x-amz-date: 20260101T000000Z', 'x-amz-content-sha256: UNSIGNED-PAYLOAD'],
      });
      expect(r.status, `${target}: ${r.body}`).toBe(200);
      const seen = h.upstream.requests.at(-1);
      if (seen === undefined) throw new Error('nothing upstream');
      expect(seen.url).toBe(target);
      expect(sigv4Problem(seen, SECRETS.AWS_SECRET_ACCESS_KEY, SECRETS.AWS_ACCESS_KEY_ID), target).toBeNull();
    }
  });

  it('held: a non-UTF-8 escape in the query of a signed request is refused with nothing sent', async () => {
    const before = h.upstream.requests.length;
    const r = await via('https://api.example.test/v1/echo?a=%FF', {
      headers: [`Authorization: ${sigv4Auth(PH_S3, 'us-east-1/s3')}`, 'x-amz-date: 20260101T000000Z', 'x-amz-content-sha256: UNSIGNED-PAYLOAD'],
    });
    expect(r.status).toBe(400);
    expect(h.upstream.requests.length).toBe(before);
  });
});

describe('token endpoint misbehaving', () => {
  it('held: an error body that reflects the client secret reaches no response, log or audit line', async () => {
    auth.failNext.push({ status: 401, body: JSON.stringify({ error: 'invalid_client', error_description: `bad secret ${SECRETS.CC_CLIENT_SECRET}` }) });
    const a = await via('https://vault.example.test/other', { headers: ['Authorization: Bearer oauth-fail-PLACEHOLDER-attack3-0123456789'] });
    expect(a.status).toBe(503);
    // A failed exchange is not retried before its backoff (1 s, then 2 s): wait each out.
    await new Promise((r) => setTimeout(r, 1_100));
    auth.failNext.push({ status: 302, body: SECRETS.CC_CLIENT_SECRET });
    const b = await via('https://vault.example.test/other', { headers: ['Authorization: Bearer oauth-fail-PLACEHOLDER-attack3-0123456789'] });
    expect(b.status).toBe(503);
    await new Promise((r) => setTimeout(r, 2_100));
    auth.failNext.push({ status: 200, body: JSON.stringify({ access_token: 'x'.repeat(70_000), token_type: 'Bearer' }) });
    const c = await via('https://vault.example.test/other', { headers: ['Authorization: Bearer oauth-fail-PLACEHOLDER-attack3-0123456789'] });
    expect(c.status).toBe(503);
    const reasons = h.auditRecords().filter((e) => e.type === 'token_exchange' && e.secret_name === 'CC_FAIL' && e.outcome === 'failed').map((e) => e.reason);
    expect(reasons).toEqual(['oauth_error', 'http_status', 'too_large']);
  });
});

describe('token endpoint on an untrusted certificate', () => {
  it('held: 503, reason untrusted, and the impostor never receives an HTTP request (client secret never sent)', async () => {
    const r = await via('https://vault.example.test/other', { headers: ['Authorization: Bearer oauth-untrusted-PLACEHOLDER-attack3-0123'] });
    expect(r.status).toBe(503);
    expect(h.untrustedUpstream.requests).toHaveLength(0);
    expect(h.auditRecords().find((e) => e.type === 'token_exchange' && e.secret_name === 'CC_UNTRUSTED' && e.outcome !== 'started')).toMatchObject({ outcome: 'failed', reason: 'untrusted' });
  });
});

describe('what never leaves keyswap', () => {
  it('no backend value in any response, log or audit line', () => {
    const texts = [...outputs, h.auditText(), h.stdout(), h.stderr()];
    for (const v of Object.values(SECRETS).filter((s) => s.length > 16)) {
      for (const t of texts) expect(t.includes(v), v.slice(0, 10)).toBe(false);
    }
  });
});
