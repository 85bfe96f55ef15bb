import { createHmac } from 'node:crypto';
import type { SignerSpec } from '../config/index.js';
import type { SignableRequest } from './sigv4.js';

type Hmac = Extract<SignerSpec, { kind: 'hmac' }>;

/** Whether the signing string reads the body's hash (so the body must be read before anything is sent). */
export function hmacNeedsBody(spec: Hmac): boolean {
  return spec.signingString.includes('{body_sha256}');
}

/**
 * An HMAC (node:crypto) over the configured signing string, its tokens filled from the request as it goes
 * upstream: {method} {path} {query} (as sent) {host} {body_sha256} (hex) {timestamp} (Unix seconds). Returns the
 * header to set, and the timestamp header when one is configured. Each token is replaced in one pass, so a value
 * holding a token's text is never expanded again.
 */
export function signHmac(spec: Hmac, header: string, key: string, req: SignableRequest & { readonly rawQuery: string }, nowMs: number): [string, string][] {
  const timestamp = String(Math.floor(nowMs / 1000));
  const tokens: Record<string, string> = {
    '{method}': req.method, '{path}': req.path, '{query}': req.rawQuery, '{host}': req.host,
    '{body_sha256}': req.bodySha256 ?? '', '{timestamp}': timestamp,
  };
  const message = spec.signingString.replace(/\{(method|path|query|host|body_sha256|timestamp)\}/g, (t) => tokens[t] ?? t);
  const digest = createHmac(spec.algorithm, key).update(message, 'utf8').digest(spec.encoding);
  return spec.timestampHeader === null ? [[header, digest]] : [[header, digest], [spec.timestampHeader, timestamp]];
}
