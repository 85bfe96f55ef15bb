import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { ConfigError } from './errors.js';

export type FieldPath = readonly (string | number)[];

/** A parsed YAML document that can say on which line any field (or the key naming it) stands. */
export interface YamlSource {
  readonly file: string;
  readonly data: unknown;
  lineOf(path: FieldPath, key?: boolean): number;
}

export function parseYaml(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: false });
  const first = doc.errors[0];
  if (first) {
    const line = lineCounter.linePos(first.pos[0]).line;
    throw new ConfigError(file, line, '(yaml)', `${first.message.split('\n')[0] ?? 'not valid YAML'}`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Aliases are resolved here, not at parse time: an unresolved or exploding alias is a user mistake too.
    throw new ConfigError(file, 1, '(yaml)', `${(err as Error).message.split('\n')[0] ?? 'invalid YAML'}`);
  }
  const lineOf = (path: FieldPath, key = false): number => {
    let node: unknown = doc.contents;
    let line = 1;
    for (const segment of path) {
      const at = rangeStart(node);
      if (at !== null) line = lineCounter.linePos(at).line;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) return line;
        if (key && segment === path[path.length - 1]) return lineOf2(pair.key, lineCounter) ?? line;
        node = pair.value ?? pair.key;
        if (pair.value === null) return lineOf2(pair.key, lineCounter) ?? line;
      } else if (isSeq(node) && typeof segment === 'number') {
        node = node.items[segment];
      } else {
        return line;
      }
    }
    return lineOf2(node, lineCounter) ?? line;
  };
  return { file, data, lineOf };
}

function rangeStart(node: unknown): number | null {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : null;
}

function lineOf2(node: unknown, lc: LineCounter): number | null {
  const at = rangeStart(node);
  return at === null ? null : lc.linePos(at).line;
}

/** `secrets.A.bindings[0].host` */
export function fieldName(path: FieldPath): string {
  let out = '';
  for (const s of path) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(top level)' : out;
}
