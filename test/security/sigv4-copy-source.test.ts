import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlVia } from '../helpers/clients.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { createTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/*
 * Issue #33, finding 5 (a review testing SigV4 live): a binding that allows GET and PUT on /bucket-a/** refused
 * `GET /bucket-b/secret`, yet signed `PUT /bucket-a/copy` with `x-amz-copy-source: /bucket-b/secret`, and S3 copied
 * the other bucket's object (audited as an ordinary allowed request; the next GET reads it). A header naming
 * another object is now decided as a GET of that object, against the same binding.
 */

const PH = 'AKIAS3COPYPLACEHOLDER0001';
const SECRETS = { AWS_ACCESS_KEY_ID: 'AKIAREALKEYCOPYSRC0001', AWS_SECRET_ACCESS_KEY: `real-secret/${randomBytes(12).toString('base64')}` };
const auth = `AWS4-HMAC-SHA256 Credential=${PH}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;

// Path style, virtual-hosted with a dotted bucket (AWS), and a provider whose names do not say where the bucket is.
const PATH_STYLE = 's3.us-east-1.amazonaws.com';
const DOTTED = 'logs.bucket-a.s3.us-east-1.amazonaws.com';
const SPACES = 'bucket-a.nyc3.digitaloceanspaces.com';

let h: Harness;
let up: Upstream;
beforeAll(async () => {
  const ca = createTestCa();
  up = await startUpstream({ tls: ca.issue([PATH_STYLE, DOTTED, SPACES]) });
  h = await startHarness({
    testCa: ca,
    secretValues: SECRETS,
    resolve: Object.fromEntries([PATH_STYLE, DOTTED, SPACES].map((host) => [`${host}:443`, `127.0.0.1:${up.port}`])),
    secrets: `
  AWS_S3:
    placeholder: "${PH}"
    inject: { type: sigv4, region: us-east-1, service: s3, access_key_id_secret: AWS_ACCESS_KEY_ID, secret_access_key_secret: AWS_SECRET_ACCESS_KEY }
    bindings:
      - { host: ${PATH_STYLE}, methods: [GET, PUT], paths: ["/bucket-a/**"] }
      - { host: ${DOTTED}, methods: [GET, PUT] }
      - { host: ${SPACES}, methods: [GET, PUT] }
`,
  });
});
afterAll(async () => {
  await h.close();
  await up.close();
});

const put = (source: string, url = `https://${PATH_STYLE}/bucket-a/copy`) => curlVia(h, url, {
  method: 'PUT', data: '',
  headers: [`Authorization: ${auth}`, 'x-amz-date: 20260101T000000Z', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', `x-amz-copy-source: ${source}`],
});

describe('a signature only for what the binding allows', () => {
  it.each([
    ['another bucket', '/bucket-b/secret'],
    ['another bucket, without the leading slash', 'bucket-b/secret'],
    ['another bucket, with a version id', '/bucket-b/secret?versionId=3'],
    ['a dot segment out of the allowed bucket', '/bucket-a/../bucket-b/secret'],
    ['an encoded slash', '/bucket-a%2F..%2Fbucket-b/secret'],
    ['an access point ARN', 'arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/secret'],
  ])('x-amz-copy-source naming %s is refused (403), nothing signed or sent, audited', async (_what, source) => {
    const before = up.requests.length;
    const r = await put(source);
    expect(r.status, r.body).toBe(403);
    expect(r.body).toContain('x-amz-copy-source');
    expect(up.requests.length).toBe(before);
    expect(await waitFor(() => h.auditRecords().some((e) => e.type === 'deny' && e.reason === 'signing_scope_violation'))).toBe(true);
  });

  it('a copy source the binding allows reading is signed and sent, header and all', async () => {
    const r = await put('/bucket-a/original.txt');
    expect(r.status, r.body).toBe(200);
    const seen = up.requests.at(-1);
    expect(seen?.headers['x-amz-copy-source']).toBe('/bucket-a/original.txt');
    expect(String(seen?.headers.authorization)).toContain(`Credential=${SECRETS.AWS_ACCESS_KEY_ID}/`);
    expect(String(seen?.headers.authorization)).toMatch(/SignedHeaders=[^,]*x-amz-copy-source/);
  });

  // Found attacking the fix: the virtual-hosted shape was read from `.s3` after the first label only.
  it.each([
    ['an AWS bucket with dots in its name', `https://${DOTTED}/copy`],
    ['a provider whose names do not say where the bucket is', `https://${SPACES}/copy`],
  ])('virtual-hosted, %s: a copy from another bucket is refused (403), nothing sent', async (_what, url) => {
    const before = up.requests.length;
    const r = await put('/other-bucket/secret.txt', url);
    expect(r.status, r.body).toBe(403);
    expect(up.requests.length).toBe(before);
  });

  it('virtual-hosted with a dotted bucket: a copy within that bucket is signed and sent', async () => {
    const r = await put('/logs.bucket-a/original.txt', `https://${DOTTED}/copy`);
    expect(r.status, r.body).toBe(200);
    expect(String(up.requests.at(-1)?.headers.authorization)).toMatch(/SignedHeaders=[^,]*x-amz-copy-source/);
  });
});
