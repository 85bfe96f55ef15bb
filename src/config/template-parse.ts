import type { TemplateExpr, TemplateFilter, TemplateFunction, TemplateSegment } from './template-ast.js';

const FILTERS: ReadonlySet<string> = new Set<TemplateFilter>(['b64encode', 'urlencode', 'sha256']);
const FUNCTIONS: Readonly<Record<TemplateFunction, number>> = { hmac_sha256: 2, totp: 1 };

type Token =
  | { kind: 'name'; value: string; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'punct'; value: '+' | '|' | '(' | ')' | ','; at: number };

/**
 * Parses `text {{ expr }} text`: the closed language of DESIGN.md §4 (names, quoted strings, `+`, the filters
 * b64encode/urlencode/sha256, the functions hmac_sha256(key, msg) and totp(secret)). Anything else is an error
 * naming the column: there is no general template engine to escape into.
 */
export function parseTemplate(source: string): TemplateSegment[] {
  const out: TemplateSegment[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) {
      out.push({ kind: 'text', text: source.slice(i) });
      break;
    }
    if (open > i) out.push({ kind: 'text', text: source.slice(i, open) });
    const close = source.indexOf('}}', open + 2);
    if (close < 0) throw new Error(`template: '{{' at column ${open + 1} is never closed with '}}'`);
    out.push({ kind: 'expr', expr: parseExpression(source.slice(open + 2, close), open + 2) });
    i = close + 2;
  }
  if (!out.some((s) => s.kind === 'expr')) throw new Error('template: has no {{ expression }}; use `format:` for fixed text with {NAME}');
  return out;
}

/** Every name the template reads. */
export function templateNames(segments: readonly TemplateSegment[]): Set<string> {
  const names = new Set<string>();
  const walk = (e: TemplateExpr): void => {
    switch (e.kind) {
      case 'name': names.add(e.name); break;
      case 'literal': break;
      case 'concat': walk(e.left); walk(e.right); break;
      case 'filter': walk(e.arg); break;
      case 'call': e.args.forEach(walk); break;
    }
  };
  for (const s of segments) if (s.kind === 'expr') walk(s.expr);
  return names;
}

function parseExpression(text: string, offset: number): TemplateExpr {
  const tokens = tokenize(text, offset);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const fail = (what: string, t: Token | undefined): never => {
    throw new Error(`template: ${what} at column ${(t?.at ?? offset + text.length) + 1}`);
  };
  const expect = (value: string): void => {
    const t = peek();
    if (t?.kind !== 'punct' || t.value !== value) fail(`expected '${value}'`, t);
    pos++;
  };
  const expr = (): TemplateExpr => {
    let left = term();
    while (peek()?.kind === 'punct' && peek()?.value === '+') {
      pos++;
      left = { kind: 'concat', left, right: term() };
    }
    return left;
  };
  const term = (): TemplateExpr => {
    let value = primary();
    while (peek()?.kind === 'punct' && peek()?.value === '|') {
      pos++;
      const t = peek();
      if (t?.kind !== 'name' || !FILTERS.has(t.value)) fail(`unknown filter (valid: ${[...FILTERS].join(', ')})`, t);
      pos++;
      value = { kind: 'filter', filter: (t as { value: TemplateFilter }).value, arg: value };
    }
    return value;
  };
  const primary = (): TemplateExpr => {
    const t = peek();
    if (t === undefined) return fail('expected a name, a string or (', t);
    pos++;
    if (t.kind === 'string') return { kind: 'literal', value: t.value };
    if (t.kind === 'punct') {
      if (t.value !== '(') return fail(`unexpected '${t.value}'`, t);
      const inner = expr();
      expect(')');
      return inner;
    }
    const next = peek();
    if (next?.kind === 'punct' && next.value === '(') {
      if (!(t.value in FUNCTIONS)) return fail(`unknown function ${t.value} (valid: ${Object.keys(FUNCTIONS).join(', ')})`, t);
      const fn = t.value as TemplateFunction;
      pos++;
      const args = [expr()];
      while (peek()?.kind === 'punct' && peek()?.value === ',') {
        pos++;
        args.push(expr());
      }
      expect(')');
      if (args.length !== FUNCTIONS[fn]) return fail(`${fn} takes ${FUNCTIONS[fn]} argument(s), got ${args.length}`, t);
      return { kind: 'call', fn, args };
    }
    return { kind: 'name', name: t.value };
  };
  const result = expr();
  if (pos < tokens.length) fail('unexpected text', tokens[pos]);
  return result;
}

function tokenize(text: string, offset: number): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const at = offset + i;
    if (c === ' ' || c === '\t') { i++; continue; }
    if ('+|(),'.includes(c)) {
      tokens.push({ kind: 'punct', value: c as '+' | '|' | '(' | ')' | ',', at });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new Error(`template: unterminated string at column ${at + 1}`);
      tokens.push({ kind: 'string', value: text.slice(i + 1, end), at });
      i = end + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i));
    if (!m) throw new Error(`template: unexpected '${c}' at column ${at + 1}`);
    tokens.push({ kind: 'name', value: m[0], at });
    i += m[0].length;
  }
  return tokens;
}
