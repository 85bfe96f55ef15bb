import { createPrivateKey } from 'node:crypto';
import type { MinterSpec } from '../config/index.js';
import { checkCredentialText, MintFailed } from './failure.js';
import { loadJose } from './libraries.js';
import { TransportError, type TokenTransport } from './transport.js';

type GitHubApp = Extract<MinterSpec, { kind: 'github_app' }>;

/**
 * A GitHub App installation token: an RS256 App JWT (backdated 60 s for clock drift, 9 minutes of the 10 GitHub
 * allows) exchanged at /app/installations/{id}/access_tokens. GitHub's keys are PKCS#1 PEM, which node:crypto
 * reads and jose signs with.
 */
export async function installationToken(spec: GitHubApp, privateKeyPem: string, transport: TokenTransport, nowMs: number): Promise<{ readonly token: string; readonly expiresAtMs: number }> {
  let key;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new MintFailed('bad_key', null, { cause: err });
  }
  const { SignJWT } = await loadJose();
  const now = Math.floor(nowMs / 1000);
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setIssuer(spec.appId).setIssuedAt(now - 60).setExpirationTime(now + 540).sign(key);
  const url = new URL(`${spec.apiBaseUrl}/app/installations/${encodeURIComponent(spec.installationId)}/access_tokens`);
  let r;
  try {
    r = await transport.send(url, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' }, body: null });
  } catch (err) {
    throw err instanceof TransportError ? new MintFailed(err.reason, null, { cause: err }) : err;
  }
  if (r.status !== 201 && r.status !== 200) throw new MintFailed('http_status', r.status);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.body.toString('utf8'));
  } catch {
    throw new MintFailed('bad_response', r.status);
  }
  const { token, expires_at: expiresAt } = (parsed ?? {}) as { token?: unknown; expires_at?: unknown };
  const expiresAtMs = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
  if (!Number.isFinite(expiresAtMs)) throw new MintFailed('bad_response', r.status);
  return { token: checkCredentialText(token), expiresAtMs };
}
