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
