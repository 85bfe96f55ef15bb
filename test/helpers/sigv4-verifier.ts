import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * An AWS SigV4 verifier written from AWS's specification for the tests, independent of the signer keyswap uses
 * (@smithy/signature-v4): the fake S3 and Bedrock endpoints accept a request only when its signature is the one
 * the real secret key gives. Returns null when valid, else what is wrong.
 */
export function sigv4Problem(req: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }, secretAccessKey: string, expectedAccessKeyId: string): string | null {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization ?? ''));
  if (!m) return 'no SigV4 Authorization header';
  const [, akid, date, region, service, signedText, signature] = m as unknown as string[];
  if (akid !== expectedAccessKeyId) return `signed with access key id ${akid?.slice(0, 6)}…, not the real one`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(date ?? '-')) return 'x-amz-date does not match the credential scope';
  const bodyHash = sha256(req.body);
  const declared = req.headers['x-amz-content-sha256'];
  if (typeof declared === 'string' && /^[0-9a-f]{64}$/.test(declared) && declared !== bodyHash) return 'x-amz-content-sha256 is not the hash of the body';
  const payloadHash = typeof declared === 'string' ? declared : bodyHash;
  const signed = (signedText ?? '').split(';');
  for (const h of ['host', 'x-amz-date']) if (!signed.includes(h)) return `${h} is not signed`;
  for (const name of Object.keys(req.headers)) if (name.startsWith('x-amz-') && !signed.includes(name)) return `${name} is sent but not signed`;
  const [path = '/', query = ''] = req.url.split('?', 2);
  const canonicalPath = service === 's3' ? path : path.split('/').map(uriEncode).join('/');
  const canonicalQuery = query === '' ? '' : query.split('&')
    .map((p) => { const eq = p.indexOf('='); return [uriEncode(decodeURIComponent(eq < 0 ? p : p.slice(0, eq))), uriEncode(decodeURIComponent(eq < 0 ? '' : p.slice(eq + 1)))]; })
    .sort(([a = '', x = ''], [b = '', y = '']) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  const canonicalHeaders = signed.map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [req.method, canonicalPath, canonicalQuery, canonicalHeaders, signedText, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key: Buffer = Buffer.from(`AWS4${secretAccessKey}`);
  for (const part of [date, region, service, 'aws4_request']) key = createHmac('sha256', key).update(part ?? '').digest();
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
  return expected === signature ? null : 'signature mismatch';
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** AWS's URI encoding: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded, upper-case hex. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
