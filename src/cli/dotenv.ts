/**
 * A .env file as lines, so it can be rewritten with the same order, comments, quoting and spacing: only the
 * value text of a replaced variable changes. Supports `NAME=value`, `export NAME=value`, single and double
 * quotes, and `# comments` after unquoted values; a value spanning lines is left alone (never a key).
 */
export interface EnvEntry {
  readonly name: string;
  readonly value: string;
  /** 1-based. */
  readonly line: number;
}

interface Line {
  readonly text: string;
  readonly entry: (EnvEntry & { readonly before: string; readonly quote: '' | '"' | "'"; readonly after: string }) | null;
}

const ASSIGNMENT = /^(\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)(.*)$/;

export class DotEnv {
  readonly #lines: Line[];
  readonly #newline: string;

  private constructor(lines: Line[], newline: string) {
    this.#lines = lines;
    this.#newline = newline;
  }

  static parse(text: string): DotEnv {
    const newline = text.includes('\r\n') ? '\r\n' : '\n';
    return new DotEnv(text.split(newline).map(parseLine), newline);
  }

  get entries(): EnvEntry[] {
    return this.#lines.flatMap((l) => (l.entry ? [{ name: l.entry.name, value: l.entry.value, line: l.entry.line }] : []));
  }

  /** The last assignment of each name wins, as in every loader. */
  toRecord(): Record<string, string> {
    return Object.fromEntries(this.entries.map((e) => [e.name, e.value]));
  }

  /** Replaces the value on one line, keeping its quoting (a placeholder never needs escaping). */
  replace(line: number, value: string): void {
    const l = this.#lines[line - 1];
    if (!l?.entry) throw new Error(`line ${line} holds no assignment`);
    const e = l.entry;
    this.#lines[line - 1] = { text: `${e.before}${e.quote}${value}${e.quote}${e.after}`, entry: { ...e, value } };
  }

  toString(): string {
    return this.#lines.map((l) => l.text).join(this.#newline);
  }
}

function parseLine(text: string, index: number): Line {
  const m = ASSIGNMENT.exec(text);
  if (!m) return { text, entry: null };
  const before = m[1] as string;
  const name = m[2] as string;
  const rest = m[3] as string;
  const line = index + 1;
  const q = rest[0];
  if (q === '"' || q === "'") {
    const close = rest.indexOf(q, 1);
    if (close < 0) return { text, entry: null }; // a multi-line value
    const raw = rest.slice(1, close);
    if (q === '"' && raw.includes('\\')) return { text, entry: null }; // escapes: not a key, leave it alone
    return { text, entry: { name, value: raw, line, before, quote: q, after: rest.slice(close + 1) } };
  }
  const hash = rest.search(/\s#/);
  const valueText = hash < 0 ? rest : rest.slice(0, hash);
  const value = valueText.trimEnd();
  return { text, entry: { name, value, line, before, quote: '', after: rest.slice(value.length) } };
}
