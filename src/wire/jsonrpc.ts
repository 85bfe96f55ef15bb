import { visit } from 'jsonc-parser';

/*
 * JSON-RPC bodies, as keyswap reads them to apply an MCP tool policy: one reading of the bytes, and a refusal
 * wherever two readers could disagree about them (the upstream's JSON parser is not keyswap's). Duplicate keys
 * (first wins in some parsers, last in others), a byte-order mark, bytes that are not UTF-8, another charset, a
 * content coding, JSON with comments or trailing commas: each makes the body unreadable, never read one way here
 * and another there.
 */

/** A message, or a batch of them (JSON-RPC 2.0 §6; MCP 2025-03-26 allows batches, later revisions do not). */
export interface JsonRpcBody {
  readonly batch: boolean;
  readonly messages: readonly JsonRpcMessage[];
}

export type JsonRpcMessage = Readonly<Record<string, unknown>>;

/** Its message names the rule broken, never the agent's text (a header value may hold a placeholder). */
export class UnreadableJson extends Error {
  override readonly name = 'UnreadableJson';
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The request body's JSON-RPC messages. An empty body has none. Throws UnreadableJson for anything that is not
 * one JSON object or a non-empty array of them, in strict UTF-8 JSON with no repeated key.
 */
export function readJsonRpcBody(bytes: Buffer, contentType: string | undefined, contentEncoding: string | undefined): JsonRpcBody {
  if (contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity') throw new UnreadableJson('a content-encoding');
  // Every `charset` the header could be read to name (a parser may take the first, the last, or one inside a
  // quoted value): all must be UTF-8, and only one may be written. The official SDK's HTTP+SSE transport takes the
  // last (content-type, then iconv-lite): `charset=utf-8; charset=utf-7` was judged as UTF-8 and run as UTF-7.
  const charsets = [...(contentType ?? '').matchAll(/;\s*charset\s*=\s*"?([^";\s]*)/gi)].map((m) => (m[1] ?? '').toLowerCase());
  if (charsets.length > 1) throw new UnreadableJson('charset twice');
  const charset = charsets[0];
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw new UnreadableJson('a charset other than UTF-8');
  if (bytes.length === 0) return { batch: false, messages: [] };
  const value = strictJson(bytes);
  if (isObject(value)) return { batch: false, messages: [value] };
  if (Array.isArray(value) && value.length > 0 && value.every(isObject)) return { batch: true, messages: value };
  throw new UnreadableJson('not a JSON-RPC message or a non-empty batch of them');
}

/** JSON as every conforming parser reads it alike: UTF-8 without a BOM, no key twice in one object. */
export function strictJson(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new UnreadableJson('not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UnreadableJson('not JSON');
  }
  const repeated = repeatedKey(text);
  if (repeated) throw new UnreadableJson('a key repeated in one object');
  return value;
}

/** Whether any object in the text holds a key twice, compared after escapes are decoded (`"n\u0061me"` is `name`). */
function repeatedKey(text: string): boolean {
  const open: Set<string>[] = [];
  let repeated = false;
  try {
    visit(text, {
      onObjectBegin: () => { open.push(new Set()); },
      onObjectEnd: () => { open.pop(); },
      onObjectProperty: (key) => {
        const keys = open[open.length - 1];
        if (keys === undefined) return;
        if (keys.has(key)) repeated = true;
        keys.add(key);
      },
    }, { disallowComments: true, allowTrailingComma: false });
  } catch {
    // Nesting deep enough to exhaust the stack: JSON.parse took it, but nothing here can vouch for it.
    return true;
  }
  return repeated;
}

export function isObject(v: unknown): v is JsonRpcMessage {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A key as a lenient parser may match it to a field: Go's encoding/json ignores case (and folds ſ to s, K to k,
 * the last match winning: mcp-go, go-sdk < 1.3.1), .NET's case-insensitive option upper-cases (ı to I), segmentio's
 * parser (go-sdk 1.3.1-1.4.0) ignored a NUL. Two keys that fold alike may be one field to the server.
 */
export function foldKey(key: string): string {
  return key.replace(/\u0000/g, '').toUpperCase().toLowerCase();
}

/** Whether the object holds a key that is not one of `names` but folds to one of them (`Method`, `paramſ`, `name\u0000`). */
export function hasLookalikeKey(m: JsonRpcMessage, names: readonly string[]): boolean {
  return Object.keys(m).some((k) => !names.includes(k) && names.includes(foldKey(k)));
}

/** An own property only: a message's `__proto__` or inherited names are never read as its fields. */
export function field(m: JsonRpcMessage, name: string): unknown {
  return Object.hasOwn(m, name) ? m[name] : undefined;
}
