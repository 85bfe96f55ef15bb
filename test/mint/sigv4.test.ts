import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signSigV4 } from '../../src/mint/sigv4.js';
import { sigv4Problem } from '../helpers/sigv4-verifier.js';

// AWS's published S3 example (Authenticating Requests, "Example: GET Object"): GET /test.txt of examplebucket with
// Range: bytes=0-9, signed at 20130524T000000Z with AWS's example key, has this signature. keyswap's signer and the
// tests' own verifier must both arrive at it.
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const AKID = 'AKIAIOSFODNN7EXAMPLE';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const EXPECTED = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';

describe("SigV4 against AWS's published S3 GET Object example", () => {
  it('keyswap re-signs the placeholder-signed request to exactly the published signature', async () => {
    const set = await signSigV4(
      { kind: 'sigv4', region: 'us-east-1', service: 's3', accessKeyIdSecret: 'A', secretAccessKeySecret: 'S', sessionTokenSecret: null },
      { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: null },
      {
        method: 'GET', host: 'examplebucket.s3.amazonaws.com', path: '/test.txt', query: [], bodySha256: null,
        headers: [
          ['host', 'examplebucket.s3.amazonaws.com'], ['range', 'bytes=0-9'], ['x-amz-content-sha256', EMPTY_SHA256], ['x-amz-date', '20130524T000000Z'],
          ['authorization', 'AWS4-HMAC-SHA256 Credential=AKIAPLACEHOLDER0123456789/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=00'],
        ],
      },
      Date.parse('2013-05-24T00:00:00Z'),
    );
    const auth = set.find(([n]) => n === 'authorization')?.[1] ?? '';
    expect(auth).toContain(`Credential=${AKID}/20130524/us-east-1/s3/aws4_request`);
    expect(auth).toContain('SignedHeaders=host;range;x-amz-content-sha256;x-amz-date');
    expect(auth).toContain(`Signature=${EXPECTED}`);
  });

  it("the tests' verifier accepts the published request and rejects it with any other key", () => {
    const req = {
      method: 'GET', url: '/test.txt', body: Buffer.alloc(0),
      headers: {
        host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': '20130524T000000Z',
        authorization: `AWS4-HMAC-SHA256 Credential=${AKID}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${EXPECTED}`,
      },
    };
    expect(sigv4Problem(req, SECRET, AKID)).toBeNull();
    expect(sigv4Problem(req, `${SECRET}x`, AKID)).toBe('signature mismatch');
  });
});

// Vectors from AWS's SigV4 test suite (as kept in awslabs/aws-c-auth, tests/aws-signing-test-suite/v4): the
// request, and the Authorization header AWS's reference signer gives it with AWS's example credentials at
// 2015-08-30T12:36:00Z for us-east-1/service. keyswap's signer, handed the request signed with a placeholder key
// over the same headers, must produce exactly that signature.
const SUITE_KEY = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: null };
const SUITE_AT = Date.parse('2015-08-30T12:36:00Z');
const VECTORS: { name: string; method: string; path: string; query: [string, string][]; headers: [string, string][]; body: string; signedHeaders: string; signature: string; token?: string }[] = [
  { name: 'get-vanilla', method: 'GET', path: '/', query: [], headers: [], body: '', signedHeaders: 'host;x-amz-date', signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'get-vanilla-query-order-key-case', method: 'GET', path: '/', query: [['Param2', 'value2'], ['Param1', 'value1']], headers: [], body: '', signedHeaders: 'host;x-amz-date', signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500' },
  { name: 'post-vanilla-query', method: 'POST', path: '/', query: [['Param1', 'value1']], headers: [], body: '', signedHeaders: 'host;x-amz-date', signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11' },
  { name: 'get-unreserved', method: 'GET', path: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', query: [], headers: [], body: '', signedHeaders: 'host;x-amz-date', signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f' },
  { name: 'get-header-value-trim', method: 'GET', path: '/', query: [], headers: [['my-header1', 'value1'], ['my-header2', '"a   b   c"']], body: '', signedHeaders: 'host;my-header1;my-header2;x-amz-date', signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736' },
  { name: 'get-vanilla-with-session-token', method: 'GET', path: '/', query: [], headers: [], body: '', signedHeaders: 'host;x-amz-date;x-amz-security-token', signature: '07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8', token: '6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267' },
  { name: 'post-x-www-form-urlencoded', method: 'POST', path: '/', query: [], headers: [['content-type', 'application/x-www-form-urlencoded'], ['content-length', '13'], ['x-amz-content-sha256', 'UNUSED']], body: 'Param1=value1', signedHeaders: 'content-length;content-type;host;x-amz-content-sha256;x-amz-date', signature: 'd3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b' },
];

describe("SigV4 against AWS's test suite", () => {
  it.each(VECTORS)('$name', async (v) => {
    const set = await signSigV4(
      { kind: 'sigv4', region: 'us-east-1', service: 'service', accessKeyIdSecret: 'A', secretAccessKeySecret: 'S', sessionTokenSecret: v.token === undefined ? null : 'T' },
      { ...SUITE_KEY, sessionToken: v.token ?? null },
      {
        method: v.method, host: 'example.amazonaws.com', path: v.path, query: v.query,
        bodySha256: createHash('sha256').update(v.body).digest('hex'),
        headers: [
          ['host', 'example.amazonaws.com'], ...v.headers,
          ['authorization', `AWS4-HMAC-SHA256 Credential=AKIAPLACEHOLDER0123456789/20150830/us-east-1/service/aws4_request, SignedHeaders=${v.signedHeaders}, Signature=00`],
        ],
      },
      SUITE_AT,
    );
    const auth = set.find(([n]) => n === 'authorization')?.[1] ?? '';
    expect(auth).toContain(`SignedHeaders=${v.signedHeaders}`);
    expect(auth).toContain(`Signature=${v.signature}`);
  });
});
