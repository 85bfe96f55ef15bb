/**
 * Request-target questions: when a path is ambiguous (an upstream might resolve it to another resource than the
 * one a binding's glob saw), and how a query is split and decoded. Pure.
 */

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A request target as RFC 9112 §3.2 has it: visible ASCII only. A raw byte past ASCII (`/v1/\xc0\xae`, which
 * HTTP/2 lets through; overlong UTF-8 for `.`) is read one way by a lenient upstream decoder and another by a glob;
 * keyswap refuses the request (400) rather than percent-encoding it for the agent.
 */
export function isRequestTarget(target: string): boolean {
  return /^[\x21-\x7e]*$/.test(target);
}

/** A method as it goes upstream: a token with no lower-case letter (Node's HTTP/1.1 client upper-cases any other). */
export function isMethodToken(method: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Z]+$/.test(method);
}

/**
 * Paths the upstream might read differently from us are never in scope: dot segments (raw or encoded),
 * encoded slashes or backslashes, NUL, `;` path parameters (`/v1/..;/admin` is `/admin` to a servlet container),
 * an encoded percent (`%252e` decodes to `%2e` at a second layer), malformed escapes, and escapes that are not
 * valid UTF-8 (overlong forms such as `%c0%ae` are `.` to lenient decoders). `/v1/ok/../admin` must not match
 * `/v1/ok/**` and then be resolved upstream to `/admin` with a secret attached.
 */
export function isAmbiguousPath(path: string): boolean {
  if (!path.startsWith('/') || !isRequestTarget(path)) return true;
  // '#' starts a fragment to a WHATWG URL parser (Express, most routers): `/v1/echo#/read` is served as /v1/echo.
  if (path.includes('\\') || path.includes(';') || path.includes('#')) return true;
  if (path.includes('%') && !hasSafeEscapes(path)) return true;
  for (const seg of path.split('/')) if (seg === '.' || seg === '..') return true;
  return false;
}

function hasSafeEscapes(path: string): boolean {
  const lower = path.toLowerCase();
  for (const bad of ['%2e', '%2f', '%5c', '%00', '%25', '%3b']) if (lower.includes(bad)) return false;
  // The whole path as the bytes an upstream decoder would see, escapes decoded; it must be valid UTF-8.
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    if (path[i] !== '%') {
      bytes.push(path.charCodeAt(i) & 0xff);
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) return false;
    bytes.push(Number.parseInt(hex, 16));
    i += 2;
  }
  try {
    UTF8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

/** `a=1&b=x%20y` → [['a','1'], ['b','x y']]; undecodable parts are kept raw so nothing hides behind bad escapes. */
export function queryPairs(query: string): [string, string][] {
  if (query === '') return [];
  return query.split('&').map((part) => {
    const eq = part.indexOf('=');
    return [decodeQueryComponent(eq < 0 ? part : part.slice(0, eq)), decodeQueryComponent(eq < 0 ? '' : part.slice(eq + 1))];
  });
}

/** One query component, `+` as space; a malformed escape leaves the raw text, which is what gets scanned. */
export function decodeQueryComponent(text: string): string {
  const plus = text.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
