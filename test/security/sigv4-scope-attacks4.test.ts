import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { sigv4Problem } from '../helpers/sigv4-verifier.js';

// Red-team (attack4): the SigV4 scope taken from the agent's own Credential= (region/service omitted in config),
// and x-amz-content-sha256 signed/sent only for S3 or when the client sent one. Real keyswap process; hosts mapped
// to the loopback recording upstream by the harness (no DNS).
const PH_ANY = 'AKIAANYPLACEHOLDERATTACK4X';
const PH_BEDROCK = 'AKIABEDROCKPLACEHOLDERATK4';
const PH_REGION = 'AKIAREGIONPLACEHOLDERATK4';
const SECRETS = {
  AWS_ACCESS_KEY_ID: 'AKIAREALKEYATTACK40001',
  AWS_SECRET_ACCESS_KEY: `real-secret/${randomBytes(12).toString('base64')}`,
};
const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const auth = (ph: string, scope: string, signed = 'host;x-amz-date'): string =>
  `AWS4-HMAC-SHA256 Credential=${ph}/20260101/${scope}/aws4_request, SignedHeaders=${signed}, Signature=${'0'.repeat(64)}`;

let h: Harness;
const outputs: string[] = [];
beforeAll(async () => {
  h = await startHarness({
    secretValues: SECRETS,
    secrets: `
  AWS_ANY:
    placeholder: "${PH_ANY}"
    inject: { type: sigv4, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: unbound.example.test, methods: [POST, PUT] }]
  AWS_REGION_ONLY:
    placeholder: "${PH_REGION}"
    inject: { type: sigv4, service: bedrock, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: other.example.test, methods: [POST] }]
  AWS_BEDROCK:
    placeholder: "${PH_BEDROCK}"
    inject: { type: sigv4, region: us-west-2, service: bedrock, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings: [{ host: api.example.test, methods: [POST] }]
`,
  });
});
afterAll(async () => {
  await h.close();
});

const via = async (url: string, o: Parameters<typeof curlVia>[2] = {}) => {
  const r = await curlVia(h, url, o);
  outputs.push(JSON.stringify(r.headers), r.body);
  return r;
};
const last = () => {
  const r = h.upstream.requests.at(-1);
  if (r === undefined) throw new Error('nothing upstream');
  return r;
};
const valid = (req: Parameters<typeof sigv4Problem>[0]) => sigv4Problem(req, SECRETS.AWS_SECRET_ACCESS_KEY, SECRETS.AWS_ACCESS_KEY_ID);

describe('scope from the agent’s Credential= (service omitted): claiming s3 toward a non-S3 host', () => {
  it('an s3 scope the agent names does not make keyswap trust its declared x-amz-content-sha256: the signature covers the body sent', async () => {
    const benign = '{"prompt":"benign, what the operator would audit"}';
    const sent = '{"prompt":"something else entirely"}';
    const r = await via('https://unbound.example.test/model/x/invoke', {
      method: 'POST', data: sent,
      headers: [`Authorization: ${auth(PH_ANY, 'us-west-2/s3')}`, 'x-amz-date: 20260101T000000Z', `x-amz-content-sha256: ${sha256(benign)}`, 'content-type: application/json'],
    });
    expect(r.status, r.body).toBe(200);
    const seen = last();
    expect(seen.body.toString()).toBe(sent);
    expect(String(seen.headers.authorization)).toContain(`Credential=${SECRETS.AWS_ACCESS_KEY_ID}/`);
    expect(String(seen.headers.authorization)).toContain('/us-west-2/s3/aws4_request');
    // Not valid for the benign body the agent never sent (that would be a forgery)…
    expect(valid({ ...seen, body: Buffer.from(benign) })).not.toBeNull();
    // …but for the body that went upstream.
    expect(valid(seen)).toBeNull();
    // Contrast: with the service configured (bedrock), the same trick is neutralised (attack3 test, still holds).
    const c = await via('https://api.example.test/model/x/invoke', {
      method: 'POST', data: sent,
      headers: [`Authorization: ${auth(PH_BEDROCK, 'us-west-2/s3')}`, 'x-amz-date: 20260101T000000Z', `x-amz-content-sha256: ${sha256(benign)}`],
    });
    expect(c.status).toBe(200);
    expect(valid(last())).toBeNull();
    expect(String(last().headers.authorization)).toContain('/us-west-2/bedrock/aws4_request');
  });

  it('UNSIGNED-PAYLOAD claimed under an agent-named s3 scope is replaced by the hash of the body sent', async () => {
    const sent = '{"prompt":"unread"}';
    const r = await via('https://unbound.example.test/model/x/invoke', {
      method: 'POST', data: sent,
      headers: [`Authorization: ${auth(PH_ANY, 'us-west-2/s3')}`, 'x-amz-date: 20260101T000000Z', 'x-amz-content-sha256: UNSIGNED-PAYLOAD'],
    });
    expect(r.status, r.body).toBe(200);
    const seen = last();
    expect(seen.headers['x-amz-content-sha256']).toBe(sha256(sent));
    expect(valid(seen)).toBeNull();
    for (const body of ['', 'anything at all']) expect(valid({ ...seen, body: Buffer.from(body) })).not.toBeNull();
  });

  it('held: region-only omission (service configured) takes the region from the agent but keeps the configured service', async () => {
    const benign = 'benign';
    const r = await via('https://other.example.test/model/x/invoke', {
      method: 'POST', data: 'evil',
      headers: [`Authorization: ${auth(PH_REGION, 'eu-central-1/s3')}`, 'x-amz-date: 20260101T000000Z', `x-amz-content-sha256: ${sha256(benign)}`],
    });
    expect(r.status).toBe(200);
    const seen = last();
    expect(String(seen.headers.authorization)).toContain('/eu-central-1/bedrock/aws4_request');
    expect(valid(seen)).toBeNull();
    expect(valid({ ...seen, body: Buffer.from(benign) })).not.toBeNull();
  });
});

describe('odd scopes, several Credential=, a second Authorization header', () => {
  it('held: a scope with characters outside [a-z0-9-] (upper case, %, space, dot) reads as no scope: 400, nothing sent', async () => {
    for (const scope of ['us-west-2/S3', 'us-west-2/s3%00', 'us west/s3', 'us-west-2/s3.x', '../s3']) {
      const before = h.upstream.requests.length;
      const r = await via('https://unbound.example.test/x', {
        method: 'POST', data: 'b',
        headers: [`Authorization: ${auth(PH_ANY, scope)}`, 'x-amz-date: 20260101T000000Z'],
      });
      expect(r.status, scope).toBe(400);
      expect(h.upstream.requests.length, scope).toBe(before);
    }
  });

  it('several Credential= in one header: the first well-formed one wins (agent chooses; no more power than naming it once)', async () => {
    const r = await via('https://unbound.example.test/x', {
      method: 'POST', data: 'b',
      headers: [`Authorization: AWS4-HMAC-SHA256 Credential=${PH_ANY}/2026/us-west-2/bedrock/aws4_request, Credential=x/20260101/eu-west-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`, 'x-amz-date: 20260101T000000Z'],
    });
    expect(r.status, r.body).toBe(200);
    const seen = last();
    expect(String(seen.headers.authorization)).toContain('/eu-west-1/sqs/aws4_request');
    expect(valid(seen)).toBeNull();
  });

  it('a second Authorization header: one Authorization goes upstream, the signature verifies for what was sent', async () => {
    const before = h.upstream.requests.length;
    const r = await via('https://unbound.example.test/x', {
      method: 'POST', data: 'evil',
      headers: [`Authorization: AWS4-HMAC-SHA256 Credential=nobody/20260101/us-west-2/s3/aws4_request, SignedHeaders=host, Signature=${'1'.repeat(64)}`,
        `Authorization: ${auth(PH_ANY, 'us-west-2/bedrock')}`, 'x-amz-date: 20260101T000000Z', `x-amz-content-sha256: ${sha256('benign')}`],
    });
    console.log(`second-auth status ${r.status}`);
    if (h.upstream.requests.length === before) { expect(r.status).toBeGreaterThanOrEqual(400); return; }
    const seen = last();
    // Whatever scope was used, the sent body must be what the signature covers.
    expect(valid(seen)).toBeNull();
  });
});

describe('x-amz-content-sha256 only for S3 or when the client sent one', () => {
  it('held: non-S3 without the header: none sent, none signed, the signature covers exactly the body sent', async () => {
    const sent = 'Action=SendMessage&MessageBody=hi';
    const r = await via('https://unbound.example.test/', {
      method: 'POST', data: sent, headers: [`Authorization: ${auth(PH_ANY, 'eu-west-1/sqs')}`, 'x-amz-date: 20260101T000000Z', 'content-type: application/x-www-form-urlencoded'],
    });
    expect(r.status).toBe(200);
    const seen = last();
    expect(seen.headers['x-amz-content-sha256']).toBeUndefined();
    expect(String(seen.headers.authorization)).not.toContain('x-amz-content-sha256');
    expect(valid(seen)).toBeNull();
    expect(valid({ ...seen, body: Buffer.from('Action=DeleteQueue') })).not.toBeNull();
  });

  it('held: non-S3 with a lying header: replaced by the hash of what is sent, and signed', async () => {
    const r = await via('https://unbound.example.test/', {
      method: 'POST', data: 'evil', headers: [`Authorization: ${auth(PH_ANY, 'eu-west-1/sqs')}`, 'x-amz-date: 20260101T000000Z', `x-amz-content-sha256: ${sha256('benign')}`],
    });
    expect(r.status).toBe(200);
    const seen = last();
    expect(seen.headers['x-amz-content-sha256']).toBe(sha256('evil'));
    expect(valid(seen)).toBeNull();
  });

  it('non-S3, client lists x-amz-content-sha256 in SignedHeaders but does not send it: keyswap sends the one it signs', async () => {
    const r = await via('https://unbound.example.test/', {
      method: 'POST', data: 'body', headers: [`Authorization: ${auth(PH_ANY, 'eu-west-1/sqs', 'host;x-amz-content-sha256;x-amz-date')}`, 'x-amz-date: 20260101T000000Z'],
    });
    expect(r.status).toBe(200);
    const seen = last();
    expect(seen.headers['x-amz-content-sha256']).toBe(sha256('body'));
    expect(valid(seen)).toBeNull();
  });

  it('held: the real secret and access key id are never in any response to the agent', () => {
    for (const o of outputs) {
      expect(o.includes(SECRETS.AWS_SECRET_ACCESS_KEY)).toBe(false);
    }
  });
});
