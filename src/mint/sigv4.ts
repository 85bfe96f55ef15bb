import type { SignerSpec } from '../config/index.js';
import { MintFailed } from './failure.js';
import { loadSigV4 } from './libraries.js';

type SigV4 = Extract<SignerSpec, { kind: 'sigv4' }>;

/** The request as it goes upstream, for a signer: what SigV4 and HMAC read. */
export interface SignableRequest {
  readonly method: string;
  /** The Host header as sent upstream. */
  readonly host: string;
  /** The path as sent, percent-encoded, without the query. */
  readonly path: string;
  /** Query pairs, decoded, in order. */
  readonly query: readonly (readonly [string, string])[];
  /** Lower-case names, as sent. */
  readonly headers: readonly (readonly [string, string])[];
  /** SHA-256 of the body (hex) when it was read; null when the body streams untouched. */
  readonly bodySha256: string | null;
}

export interface AwsCredentials { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken: string | null }

const CONTENT_SHA256 = 'x-amz-content-sha256';

/**
 * Whether SigV4 needs the body's hash. Only S3 checks a declared x-amz-content-sha256 against the body itself;
 * for every other service the signature alone vouches for the body, so keyswap hashes what it sends, whatever the
 * client declared (else an agent would get a valid signature for a body it never sent).
 */
export function sigv4NeedsBody(spec: SigV4, headers: readonly (readonly [string, string])[]): boolean {
  return !trustsDeclaredHash(spec) || !headers.some(([n]) => n === CONTENT_SHA256);
}

/**
 * A declared payload hash is trusted only when the operator configured `service: s3`: S3 checks it against the
 * body itself. An `s3` the agent names in its own credential scope proves nothing about the host it is bound to.
 */
function trustsDeclaredHash(spec: SigV4): boolean {
  return spec.service === 's3';
}

/**
 * The region and service to sign for: the configured ones, or what the client's own signature scope names
 * (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`). Letting the agent choose is safe: the binding fixes the
 * host, and AWS refuses a signature scoped to another service than the one it is. Neither known: refused.
 */
function scopeOf(spec: SigV4, headers: readonly (readonly [string, string])[]): { readonly region: string; readonly service: string } {
  const m = /Credential=[^/,]+\/\d{8}\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request/.exec(headers.find(([n]) => n === 'authorization')?.[1] ?? '');
  const region = spec.region ?? m?.[1];
  const service = spec.service ?? m?.[2];
  if (region === undefined || service === undefined) throw new MintFailed('ambiguous_request', null);
  return { region, service };
}

/** Query parameters of a presigned URL: a request keyswap signs in its head must not carry a second, unsigned one. */
const PRESIGN_PARAMS = new Set(['x-amz-signature', 'x-amz-credential', 'x-amz-algorithm', 'x-amz-date', 'x-amz-signedheaders', 'x-amz-security-token', 'x-amz-expires']);

/**
 * Re-signs the request with the real key (AWS's own signer, @smithy/signature-v4): method, canonical path and
 * query, the headers the client signed plus host, x-amz-date, x-amz-content-sha256 and every x-amz-* it sent,
 * over the payload hash. Returns the headers to set: Authorization, x-amz-date, x-amz-content-sha256 and, with a
 * session token, x-amz-security-token.
 */
export async function signSigV4(spec: SigV4, creds: AwsCredentials, req: SignableRequest, nowMs: number): Promise<[string, string][]> {
  const amz = req.headers.filter(([n]) => n.startsWith('x-amz-')).map(([n]) => n);
  // One reading: a duplicated x-amz-* header would be checked by its first value and signed as both.
  if (new Set(amz).size !== amz.length || req.query.some(([k]) => PRESIGN_PARAMS.has(k.toLowerCase()))) throw new MintFailed('ambiguous_request', null);
  const { region, service } = scopeOf(spec, req.headers);
  const declared = trustsDeclaredHash(spec) ? req.headers.find(([n]) => n === CONTENT_SHA256)?.[1] : undefined;
  // STREAMING-UNSIGNED-PAYLOAD-TRAILER (the SDKs' default for S3 uploads) carries no chunk signatures; the
  // STREAMING-AWS4-… schemes sign each chunk with a signature chained to the client's own, which no re-signing of
  // the head can repair.
  if (declared !== undefined && !/^([0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-UNSIGNED-PAYLOAD-TRAILER)$/.test(declared)) {
    throw new MintFailed('unsupported_payload', null);
  }
  const clientSigned = /SignedHeaders=([a-z0-9;-]+)/i.exec(req.headers.find(([n]) => n === 'authorization')?.[1] ?? '')?.[1]?.toLowerCase().split(';') ?? [];
  // The payload hash is in the canonical request either way; the header carrying it is sent (and signed) where S3
  // needs it or the client sent one, never added where the client's own request had none.
  const sendsContentHash = service === 's3' || req.headers.some(([n]) => n === CONTENT_SHA256) || clientSigned.includes(CONTENT_SHA256);
  const signed = new Set([...clientSigned, 'host', 'x-amz-date', ...(sendsContentHash ? [CONTENT_SHA256] : []), ...(creds.sessionToken === null ? [] : ['x-amz-security-token'])]);
  const headers: Record<string, string> = { host: req.host };
  for (const [name, value] of req.headers) {
    if (name === 'authorization' || name === 'host' || (name === CONTENT_SHA256 && declared === undefined)) continue;
    if (name.startsWith('x-amz-')) signed.add(name);
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  if (declared === undefined) {
    if (req.bodySha256 === null) throw new MintFailed('unsupported_payload', null);
    // Read by the signer as the payload hash; signed and sent only when sendsContentHash.
    headers[CONTENT_SHA256] = req.bodySha256;
  }
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of req.query) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const { SignatureV4, Hash } = await loadSigV4();
  const signer = new SignatureV4({
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken === null ? {} : { sessionToken: creds.sessionToken }) },
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
    // S3 signs the path as sent; every other service signs it encoded once more.
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
  const unsignable = new Set(Object.keys(headers).filter((n) => !signed.has(n)));
  const out = await signer.sign(
    { method: req.method, protocol: 'https:', hostname: req.host, path: req.path, query, headers, body: undefined },
    { signingDate: new Date(nowMs), unsignableHeaders: unsignable },
  );
  const set: [string, string][] = [];
  for (const name of ['authorization', 'x-amz-date', ...(sendsContentHash ? [CONTENT_SHA256] : []), 'x-amz-security-token']) {
    const value = out.headers[name];
    if (value !== undefined) set.push([name, value]);
  }
  return set;
}
