import type { IncomingMessage } from 'node:http';
import { MintService, TransportError, type MintSharing, type TokenRequest, type TokenResponse, type TokenTransport } from '../mint/index.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import type { AuditSink, SecretSource } from './snapshot.js';
import type { UpstreamClient } from './upstream.js';

const MAX_BODY = 64 * 1024;
const TIMEOUT_MS = 15_000;

/**
 * mint/'s way to a token endpoint: the upstream client every request uses, in a pool of its own (no agent's
 * connection ever carries a token request), with the answer cut off past 64 KiB or 15 s.
 */
export function tokenTransport(upstream: UpstreamClient): TokenTransport {
  return {
    send(url: URL, init: TokenRequest): Promise<TokenResponse> {
      const port = url.port === '' ? 443 : Number(url.port);
      const headers: string[] = Object.entries({ host: url.host, 'user-agent': 'keyswap', ...init.headers, ...(init.body === null ? {} : { 'content-length': String(Buffer.byteLength(init.body)) }) }).flat();
      const req = upstream.request({ scheme: 'https', host: url.hostname.replace(/^\[|\]$/g, ''), port, identity: '\0token-endpoints' }, { method: init.method, path: `${url.pathname}${url.search}`, headers });
      return new Promise<TokenResponse>((resolve, reject) => {
        const timer = setTimeout(() => req.destroy(Object.assign(new Error('token endpoint timeout'), { code: 'ETIMEDOUT' })), TIMEOUT_MS);
        req.once('error', (err: Error & { code?: string }) => {
          clearTimeout(timer);
          reject(err instanceof TransportError ? err : new TransportError(failureOf(err), { cause: err }));
        });
        req.once('response', (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) req.destroy(new TransportError('too_large'));
            else chunks.push(c);
          });
          res.once('end', () => {
            clearTimeout(timer);
            const flat: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
            resolve({ status: res.statusCode ?? 0, headers: flat, body: Buffer.concat(chunks) });
          });
          res.once('error', (err) => req.destroy(err));
        });
        req.end(init.body ?? undefined);
      });
    },
  };
}

function failureOf(err: Error & { code?: string }): 'unreachable' | 'timeout' | 'untrusted' {
  const code = upstreamRefusal(err).code;
  return code === 'upstream_timeout' ? 'timeout' : code === 'upstream_untrusted' ? 'untrusted' : 'unreachable';
}

/** The mint service of a snapshot: its token requests go out through that snapshot's upstream client. */
export function mintServiceFor(upstream: UpstreamClient, audit: AuditSink, secrets: SecretSource, previous?: MintService, sharing?: MintSharing): MintService {
  return new MintService({
    transport: tokenTransport(upstream),
    secrets,
    ...(previous === undefined ? {} : { inherit: previous }),
    ...(sharing === undefined ? {} : { sharing }),
    audit: async (e) => {
      try {
        await audit.append({ type: 'token_exchange', ...e });
      } catch (err) {
        throw new Refusal('audit_unavailable', { cause: err });
      }
    },
  });
}
