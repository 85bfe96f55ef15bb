import type { Destination } from '../audit/index.js';
import { PLACEHOLDER_MARKER } from '../policy/index.js';

/**
 * The audit file's view of a path: at most two segments, never the query, and a segment holding a placeholder
 * (path-injected tokens such as `/bot<token>/`) masked, so the file never holds a credential or its stand-in.
 */
function pathPrefix(path: string): string {
  const segs = path.split('/').slice(1, 3).map((s) => (s.includes(PLACEHOLDER_MARKER) ? '*' : s));
  return `/${segs.join('/')}`.slice(0, 64);
}

/**
 * The audit file's view of a method: a token an agent chose (an HTTP/2 `:method` may be any upper-case token) that
 * holds the placeholder marker is masked, as path segments are, and a method is at most 32 characters.
 */
export function auditMethod(method: string): string {
  return method.includes(PLACEHOLDER_MARKER) ? '*' : method.slice(0, 32);
}

/**
 * A path as an operator is shown it before approving a request: whole (the audit file's two segments would hide
 * where the request goes), never the query, a segment holding a placeholder (as sent, or percent-encoded) as `*`.
 */
export function operatorPath(path: string): string {
  const shown = path.split('/').map((s) => (holdsMarker(s) ? '*' : s)).join('/');
  // Cut visibly: an operator must see that there is more than the screen holds.
  return shown.length <= MAX_SHOWN_PATH ? shown : `${shown.slice(0, MAX_SHOWN_PATH)}…(${shown.length - MAX_SHOWN_PATH} more characters)`;
}

const MAX_SHOWN_PATH = 1024;

function holdsMarker(segment: string): boolean {
  let decoded = segment;
  try {
    decoded = decodeURIComponent(segment);
  } catch { /* not percent-encoding: as sent */ }
  return segment.toUpperCase().includes(PLACEHOLDER_MARKER) || decoded.toUpperCase().includes(PLACEHOLDER_MARKER);
}

export function destinationOf(host: string, port: number, path: string): Destination {
  // A host an agent chose (a CONNECT target, a wildcard's label) holding the placeholder marker is masked too.
  return { host: host.toUpperCase().includes(PLACEHOLDER_MARKER) ? '*' : host, port, path_prefix: pathPrefix(path) };
}
