/**
 * HTTP Basic credentials, decoded one way for every reader (placeholder scan, injection, proxy clients): strict
 * base64, bytes read as latin1 (one char per byte, so a decode and re-encode round-trips exactly whatever charset
 * the agent meant). A value that is not canonical base64 is not Basic at all: a lenient decoder ignores junk
 * characters that an upstream's decoder may not, which is a parser differential.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface BasicCredentials { readonly user: string; readonly password: string; readonly decoded: string }

/** The credentials of a `Basic …` Authorization value, or null when it is not Basic or not canonical base64. */
export function decodeBasic(value: string): BasicCredentials | null {
  if (value.length < 6 || value.slice(0, 6).toLowerCase() !== 'basic ') return null;
  const token = value.slice(6).trim();
  if (!BASE64.test(token)) return null;
  const decoded = Buffer.from(token, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  return colon < 0 ? { user: decoded, password: '', decoded } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1), decoded };
}

/** `Basic base64(text)`, with text taken as latin1 bytes (the inverse of decodeBasic). */
export function encodeBasic(decoded: string): string {
  return `Basic ${Buffer.from(decoded, 'latin1').toString('base64')}`;
}
