import type { InjectSpec, SecretSpec } from '../config/index.js';
import { decodeBasic, decodeQueryComponent, encodeBasic } from '../wire/index.js';

/** A rendered value ready to be written at one of its secret's sites. */
export interface Placement { readonly secret: SecretSpec; readonly site: InjectSpec; readonly text: string }

/** The parts of a request that injection may rewrite. Header names are lower-case; duplicates are kept. */
export interface RequestParts {
  headers: [string, string][];
  path: string;
  query: string;
}

// Header values may hold visible ASCII, obs-text, space and tab; anything else (CR, LF, NUL) would let a
// secret's value split the request.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export class InvalidRendering extends Error {
  override readonly name = 'InvalidRendering';
  constructor(readonly secretName: string) {
    super(`secret ${secretName} renders to a value that cannot be placed in a request`);
  }
}

/**
 * Writes each placement at its site, in place. The site must hold the secret's placeholder (decide()
 * checked that); other headers and parameters are left byte-for-byte as the agent sent them.
 */
export function applyPlacements(parts: RequestParts, placements: readonly Placement[]): void {
  for (const { secret, site: inject, text } of placements) {
    switch (inject.type) {
      case 'header': {
        if (!HEADER_VALUE.test(text)) throw new InvalidRendering(secret.name);
        for (const pair of parts.headers) {
          if (pair[0] === inject.header && pair[1].includes(secret.placeholder)) pair[1] = text;
        }
        break;
      }
      case 'basic': {
        for (const pair of parts.headers) {
          const basic = pair[0] === 'authorization' ? decodeBasic(pair[1]) : null;
          if (basic === null || !basic.decoded.includes(secret.placeholder)) continue;
          // The secret's UTF-8 bytes, held as latin1 like the decoded credentials, so encodeBasic sends exactly them.
          const value = Buffer.from(text, 'utf8').toString('latin1');
          const user = Buffer.from(inject.username ?? '', 'utf8').toString('latin1');
          pair[1] = encodeBasic(inject.username === null ? basic.decoded.split(secret.placeholder).join(value) : `${user}:${value}`);
        }
        break;
      }
      case 'query': {
        parts.query = replaceQueryParam(parts.query, inject.param, secret.placeholder, text);
        break;
      }
      case 'path': {
        // Encoded so a value with '/', '?' or '#' stays inside its segment and cannot re-route the request.
        parts.path = parts.path.split(secret.placeholder).join(encodeURIComponent(text));
        break;
      }
    }
  }
}

/**
 * Replaces the value of each `param` occurrence that carries the placeholder. Never appends a parameter, so the
 * upstream can never see both the placeholder and the secret as two values of one name.
 */
function replaceQueryParam(query: string, param: string, placeholder: string, text: string): string {
  return query
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      const name = decodeQueryComponent(part.slice(0, eq));
      if (name !== param || !decodeQueryComponent(part.slice(eq + 1)).includes(placeholder)) return part;
      return `${part.slice(0, eq)}=${encodeURIComponent(text)}`;
    })
    .join('&');
}
