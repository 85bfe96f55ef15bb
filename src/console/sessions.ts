import { randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a login URL works (once). */
const LOGIN_TTL_MS = 5 * 60_000;
/** How long a console session lasts without a new login. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** At most this many console sessions and unused login tokens are kept: the oldest go first. */
const MAX_KEPT = 32;

interface ConsoleSession { readonly csrf: string; readonly expiresAtMs: number }

/**
 * The console's logins: `keyswap ui` asks the control socket for a one-time token (so only an operator who can open
 * the socket can log in), the browser trades it once for an HttpOnly session cookie, and every change it asks for
 * carries the session's CSRF token. All in memory: a restart logs everyone out.
 */
export class ConsoleSessions {
  readonly #logins = new Map<string, number>();
  readonly #sessions = new Map<string, ConsoleSession>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  issueLogin(): string {
    const token = randomBytes(32).toString('base64url');
    this.#logins.set(token, this.#now() + LOGIN_TTL_MS);
    trim(this.#logins);
    return token;
  }

  /** Trades a login token (once) for a session id; null when it is unknown, used or stale. */
  login(token: string): { readonly id: string; readonly csrf: string } | null {
    const until = this.#logins.get(token);
    this.#logins.delete(token);
    if (until === undefined || this.#now() >= until) return null;
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    this.#sessions.set(id, { csrf, expiresAtMs: this.#now() + SESSION_TTL_MS });
    trim(this.#sessions);
    return { id, csrf };
  }

  /** The session a cookie names, if live. */
  session(id: string | null): ConsoleSession | null {
    if (id === null) return null;
    const s = this.#sessions.get(id);
    if (s === undefined) return null;
    if (this.#now() >= s.expiresAtMs) {
      this.#sessions.delete(id);
      return null;
    }
    return s;
  }

  logout(id: string | null): void {
    if (id !== null) this.#sessions.delete(id);
  }
}

/** Compares two tokens in constant time (for their length). */
export function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function trim<V>(m: Map<string, V>): void {
  while (m.size > MAX_KEPT) {
    const first = m.keys().next().value;
    if (first === undefined) return;
    m.delete(first);
  }
}
