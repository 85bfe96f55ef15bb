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

export function destinationOf(host: string, port: number, path: string): Destination {
  return { host, port, path_prefix: pathPrefix(path) };
}
