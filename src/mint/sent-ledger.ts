import { Secret } from '../secret.js';
import type { TokenRequest, TokenTransport } from './transport.js';

/*
 * What keyswap itself wrote into token requests, recorded at the one place they are sent, in the bytes sent: the
 * client secret as its Basic header carried it (form-encoded first, RFC 6749 §2.3.1), client assertions, App JWTs,
 * refresh tokens. Where a token endpoint is also a destination agents reach (api.github.com is both), each is
 * scrubbed from that destination's responses for as long as it may be valid. Derived from the request, not from a
 * list of the minter's inputs: whatever a minter sends is covered, including what a library added.
 */

/** Form parameters that carry no credential: everything else a token request sends is recorded. */
const PUBLIC_PARAMS = new Set(['grant_type', 'scope', 'client_id', 'audience', 'resource', 'redirect_uri', 'response_type', 'code_challenge_method', 'subject_token_type', 'requested_token_type', 'actor_token_type']);
/** Headers that carry no credential. */
const PUBLIC_HEADERS = new Set(['accept', 'content-type', 'content-length', 'user-agent', 'host', 'dpop-nonce', 'x-github-api-version']);
/** How long a value with no expiry of its own is kept after it was last sent. */
const KEEP_MS = 24 * 3600_000;
/** Per destination: past this, the value that expires first goes. */
const MAX_PER_DESTINATION = 256;

interface Sent { readonly secretName: string; readonly value: Secret; untilMs: number }

export interface SentValue { readonly secretName: string; readonly value: Secret }

export class SentLedger {
  readonly #byDestination = new Map<string, Sent[]>();
  readonly #now: () => number;

  constructor(now: () => number, inherit?: SentLedger) {
    this.#now = now;
    if (inherit !== undefined) for (const [d, list] of inherit.#byDestination) this.#byDestination.set(d, [...list]);
  }

  /** A transport that records every credential in the requests it sends for this secret. */
  recording(transport: TokenTransport, secretName: string): TokenTransport {
    return {
      send: (url, init) => {
        for (const value of credentialsIn(init)) this.record(destinationOf(url), secretName, value);
        return transport.send(url, init);
      },
    };
  }

  /** Records one value sent to `destination` (`https://host:port`): a JWT until it expires, anything else a day from now. */
  record(destination: string, secretName: string, value: string, untilMs: number = this.#now() + KEEP_MS): void {
    const until = jwtExpiryMs(value) ?? untilMs;
    const list = this.#byDestination.get(destination) ?? [];
    const had = list.find((e) => e.secretName === secretName && e.value.reveal() === value);
    if (had !== undefined) {
      had.untilMs = Math.max(had.untilMs, until);
      return;
    }
    list.push({ secretName, value: new Secret(value), untilMs: until });
    if (list.length > MAX_PER_DESTINATION) list.sort((a, b) => b.untilMs - a.untilMs).pop();
    this.#byDestination.set(destination, list);
  }

  /** What was sent to `destination` and may still be valid; the same objects while nothing changed. */
  live(destination: string): readonly SentValue[] {
    const list = this.#byDestination.get(destination);
    if (list === undefined) return [];
    const now = this.#now();
    if (list.some((e) => e.untilMs <= now)) {
      const kept = list.filter((e) => e.untilMs > now);
      if (kept.length === 0) this.#byDestination.delete(destination);
      else this.#byDestination.set(destination, kept);
      return kept;
    }
    return list;
  }
}

/** `https://host:port`, the key proxy/ scrubs a destination's responses under. */
export function destinationOf(url: URL): string {
  const port = url.port === '' ? (url.protocol === 'http:' ? 80 : 443) : Number(url.port);
  return `${url.protocol.replace(/:$/, '')}://${url.hostname.replace(/^\[|\]$/g, '').toLowerCase()}:${port}`;
}

/** Every credential a token request carries, as sent: header values (a Basic one decoded too) and form parameters. */
export function credentialsIn(req: TokenRequest): string[] {
  const out: string[] = [];
  for (const [name, raw] of Object.entries(req.headers)) {
    if (PUBLIC_HEADERS.has(name.toLowerCase())) continue;
    const scheme = /^(\S+)\s+(\S+)$/.exec(raw.trim());
    if (scheme === null) {
      out.push(raw);
      continue;
    }
    const [, kind, token] = scheme as unknown as [string, string, string];
    out.push(token);
    if (kind.toLowerCase() === 'basic') {
      // Basic's user:password, each part form-encoded first as RFC 6749 §2.3.1 has it: the pair and the password as
      // they went out, and the password as an endpoint that parses them reads it.
      const pair = Buffer.from(token, 'base64').toString('utf8');
      const password = pair.slice(pair.indexOf(':') + 1);
      out.push(pair, password, formDecoded(password));
    }
  }
  const type = Object.entries(req.headers).find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? '';
  if (req.body !== null && /^application\/x-www-form-urlencoded/i.test(type)) {
    for (const [name, value] of new URLSearchParams(req.body)) if (!PUBLIC_PARAMS.has(name)) out.push(value);
  }
  return out.filter((v) => v.length > 0);
}

function formDecoded(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}

/** A JWT's `exp` in ms, read without verifying (it is keyswap's own or its library's); null for anything else. */
function jwtExpiryMs(value: string): number | null {
  const parts = value.split('.');
  if (parts.length !== 3) return null;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 + 60_000 : null;
  } catch {
    return null;
  }
}
