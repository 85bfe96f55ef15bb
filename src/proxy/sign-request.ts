import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestParts } from '../inject/index.js';
import { hmacNeedsBody, MintFailed, signHmac, signSigV4, sigv4NeedsBody } from '../mint/index.js';
import type { Verdict } from '../policy/index.js';
import { Secret } from '../secrets/index.js';
import { setHeader, type Framing } from '../wire/index.js';
import type { Exchange } from './exchange.js';
import { Refusal } from './refusal.js';

/** The most a body is held to be hashed for a signature (SigV4 outside S3, HMAC with {body_sha256}). */
const MAX_SIGNED_BODY = 16 * 1024 * 1024;

/**
 * Computes each signed site's signature (SigV4, HMAC) over the request as it will be sent, and writes its
 * headers. A signature over the body's hash needs the body first: it is read whole (up to 16 MiB) and sent from
 * memory; a body rewritten as it streams cannot be hashed first, so that combination is refused.
 */
/** What signing produced: the body it read (null: it streams untouched), and the signatures, scrubbed from this response. */
export interface SignedRequest {
  readonly body: Buffer | null;
  readonly signatures: readonly { readonly secretName: string; readonly value: Secret }[];
}

export async function signRequest(ex: Exchange, req: IncomingMessage, parts: RequestParts, framing: Framing, verdict: Extract<Verdict, { kind: 'forward' }>, values: ReadonlyMap<string, Secret>, nowMs: number): Promise<SignedRequest> {
  const signers = verdict.injections.flatMap(({ secret, sites }) => sites.flatMap((site) => (site.render.kind === 'signed' ? [{ secret, site, signer: site.render.signer }] : [])));
  if (signers.length === 0) return { body: null, signatures: [] };
  const needsBody = signers.some(({ signer }) => (signer.kind === 'sigv4' ? signing(() => sigv4NeedsBody(signer, parts.headers)) : hmacNeedsBody(signer)));
  if (needsBody && verdict.bodyInjectors.length > 0) throw new Refusal('signing_unsupported');
  const body = needsBody ? await readWhole(req, framing) : null;
  const reveal = (n: string): string => values.get(n)?.reveal() ?? '';
  const query = parts.query === '' ? [] : parts.query.split('&').map((p): [string, string] => {
    const eq = p.indexOf('=');
    try {
      return [decodeURIComponent(eq < 0 ? p : p.slice(0, eq)), decodeURIComponent(eq < 0 ? '' : p.slice(eq + 1))];
    } catch {
      throw new Refusal('bad_request'); // an escape no signer can canonicalise
    }
  });
  const request = {
    method: ex.method, host: parts.headers.find(([n]) => n === 'host')?.[1] ?? '', path: parts.path, query, rawQuery: parts.query,
    headers: parts.headers, bodySha256: body === null ? null : createHash('sha256').update(body).digest('hex'),
  };
  const signatures: { secretName: string; value: Secret }[] = [];
  for (const { secret, site, signer } of signers) {
    const set = await signing(async () => (signer.kind === 'sigv4'
      ? signSigV4(signer, { accessKeyId: reveal(signer.accessKeyIdSecret), secretAccessKey: reveal(signer.secretAccessKeySecret), sessionToken: signer.sessionTokenSecret === null ? null : reveal(signer.sessionTokenSecret) }, request, nowMs)
      : signHmac(signer, site.type === 'header' ? site.header : '', reveal(signer.secretKeySecret), request, nowMs)));
    for (const [name, value] of set) setHeader(parts.headers, name, value);
    // A signature is a credential for its window: an echo of it would let the agent replay the request unaudited.
    const signature = signer.kind === 'sigv4' ? /Signature=([0-9a-f]{64})/.exec(set.find(([n]) => n === 'authorization')?.[1] ?? '')?.[1] : set[0]?.[1];
    if (signature !== undefined) signatures.push({ secretName: secret.name, value: new Secret(signature) });
  }
  return { body, signatures };
}

/** A signer's refusals in the one table's terms: a request it cannot read one way is 400, one it cannot re-sign 400 too. */
function signing<T>(sign: () => T): T {
  const refuse = (err: unknown): never => {
    if (err instanceof MintFailed && err.reason === 'ambiguous_request') throw new Refusal('bad_request', { cause: err });
    throw err instanceof MintFailed && err.reason === 'unsupported_payload' ? new Refusal('signing_unsupported', { cause: err }) : err;
  };
  try {
    const out = sign();
    return (out instanceof Promise ? out.catch(refuse) : out) as T;
  } catch (err) {
    return refuse(err);
  }
}

/** The whole request body, as the agent framed it; over the limit, 413 and nothing sent. */
async function readWhole(req: IncomingMessage, framing: Framing): Promise<Buffer> {
  if (framing.kind === 'none') return Buffer.alloc(0);
  if (framing.kind === 'length' && framing.bytes > MAX_SIGNED_BODY) throw new Refusal('body_too_large_to_sign');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_SIGNED_BODY) throw new Refusal('body_too_large_to_sign');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
