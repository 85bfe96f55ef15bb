import { createPrivateKey, randomUUID } from 'node:crypto';
import type { MinterSpec } from '../config/index.js';
import { MintFailed } from './failure.js';
import { loadJose } from './libraries.js';

type JwtBearer = Extract<MinterSpec, { kind: 'jwt_bearer' }>;

/** A JWT signed here from configured claims (jose): HS256 with a shared secret, RS256/ES256 with a PEM key. */
export async function signBearerJwt(spec: JwtBearer, signingKey: string, nowMs: number): Promise<{ readonly jwt: string; readonly expiresAtMs: number }> {
  let key;
  try {
    key = spec.algorithm === 'HS256' ? new TextEncoder().encode(signingKey) : createPrivateKey(signingKey);
  } catch (err) {
    throw new MintFailed('bad_key', null, { cause: err });
  }
  const { SignJWT } = await loadJose();
  const iat = Math.floor(nowMs / 1000);
  let token = new SignJWT({ ...spec.extraClaims }).setProtectedHeader({ alg: spec.algorithm, typ: 'JWT' }).setIssuedAt(iat).setExpirationTime(iat + spec.ttlSeconds).setJti(randomUUID());
  if (spec.issuer !== null) token = token.setIssuer(spec.issuer);
  if (spec.subject !== null) token = token.setSubject(spec.subject);
  if (spec.audience !== null) token = token.setAudience(spec.audience);
  try {
    return { jwt: await token.sign(key), expiresAtMs: (iat + spec.ttlSeconds) * 1000 };
  } catch (err) {
    throw new MintFailed('bad_key', null, { cause: err });
  }
}
