/**
 * A .env file as lines, so it can be rewritten with the same order, comments, quoting, spacing and line endings:
 * only the value text of a replaced variable changes. Read as the loaders users run read it (Node's dotenv, Python's
 * python-dotenv): lines split on `\r?\n` each (a file with a CRLF line among LF ones is common: one line appended on
 * Windows), `NAME=value`, `export NAME=value` and `NAME: value`, names with `.` and `-`, single, double and backtick
 * quotes, a quoted value spanning lines, `\n` and `\r` escapes (and `\"`, `\\`) inside double quotes, and
 * `# comments` after unquoted values.
 */
export interface EnvEntry {
  readonly name: string;
  readonly value: string;
  /** 1-based: the line the assignment begins on. */
  readonly line: number;
}

interface Assignment extends EnvEntry {
  /** The text before the value (`export NAME=`), and after it (a comment, spaces), on the assignment's lines. */
  readonly before: string;
  readonly quote: '' | '"' | "'" | '`';
  readonly after: string;
  /** How many lines the assignment spans (a quoted value with newlines). */
  readonly span: number;
}

interface Line {
  readonly text: string;
  /** The line's own terminator: `\r\n`, `\n`, or '' for the last line. */
  readonly eol: string;
}

const START = /^(\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=|:(?=\s|$))\s*)(.*)$/;

export class DotEnv {
  readonly #lines: Line[];
  #entries: Assignment[];

  private constructor(lines: Line[]) {
    this.#lines = lines;
    this.#entries = parseEntries(lines);
  }

  static parse(text: string): DotEnv {
    const lines: Line[] = [];
    const re = /([^\r\n]*)(\r\n|\n|\r|$)/g;
    for (let m = re.exec(text); m !== null && m.index < text.length; m = re.exec(text)) {
      lines.push({ text: m[1] as string, eol: m[2] as string });
      if ((m[2] as string) === '') break;
    }
    return new DotEnv(lines);
  }

  get entries(): EnvEntry[] {
    return this.#entries.map((e) => ({ name: e.name, value: e.value, line: e.line }));
  }

  /** The last assignment of each name wins, as in every loader. */
  toRecord(): Record<string, string> {
    return Object.fromEntries(this.entries.map((e) => [e.name, e.value]));
  }

  /** The 1-based numbers of lines no assignment covers (comments, blanks, text no loader reads as one). */
  get otherLines(): { readonly line: number; readonly text: string }[] {
    const covered = new Set(this.#entries.flatMap((e) => Array.from({ length: e.span }, (_, i) => e.line + i)));
    return this.#lines.flatMap((l, i) => (covered.has(i + 1) ? [] : [{ line: i + 1, text: l.text }]));
  }

  /**
   * Replaces the value of the assignment beginning on `line`, keeping its quoting (a placeholder never needs
   * escaping); a value that spanned lines becomes one line, keeping the last line's terminator.
   */
  replace(line: number, value: string): void {
    const e = this.#entries.find((x) => x.line === line);
    if (e === undefined) throw new Error(`line ${line} begins no assignment`);
    const last = this.#lines[line - 1 + e.span - 1] as Line;
    this.#lines.splice(line - 1, e.span, { text: `${e.before}${e.quote}${value}${e.quote}${e.after}`, eol: last.eol });
    this.#entries = parseEntries(this.#lines);
  }

  toString(): string {
    return this.#lines.map((l) => `${l.text}${l.eol}`).join('');
  }
}

function parseEntries(lines: readonly Line[]): Assignment[] {
  const out: Assignment[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = START.exec((lines[i] as Line).text);
    if (!m) continue;
    const entry = parseValue(lines, i, m[1] as string, m[2] as string, m[3] as string);
    if (entry === null) continue;
    out.push(entry);
    i += entry.span - 1;
  }
  return out;
}

function parseValue(lines: readonly Line[], i: number, before: string, name: string, rest: string): Assignment | null {
  const q = rest[0];
  if (q === '"' || q === "'" || q === '`') {
    // The closing quote may be on a later line: a multi-line value, as dotenv reads PEM keys.
    let text = rest.slice(1);
    let span = 1;
    for (;;) {
      const close = closingQuote(text, q);
      // A quote closes a value only when nothing but spaces and a comment follow it on its line (dotenv's rule);
      // otherwise loaders read the opening line alone, unquoted, and the lines after it as lines of their own.
      if (close >= 0 && !/^\s*(?:#.*)?$/.test(text.slice(close + 1))) return unquoted(i, before, name, rest);
      if (close >= 0) {
        const raw = text.slice(0, close);
        const value = q === '"' ? unescapeDouble(raw) : raw;
        return { name, value, line: i + 1, before, quote: q, after: text.slice(close + 1), span };
      }
      const next = lines[i + span];
      if (next === undefined) return null; // never closed: no loader reads a value here
      text = `${text}\n${next.text}`;
      span++;
    }
  }
  return unquoted(i, before, name, rest);
}

/** A value read to the end of its line (a comment after a space cut off). */
function unquoted(i: number, before: string, name: string, rest: string): Assignment {
  const hash = rest.search(/\s#|^#/);
  const valueText = hash < 0 ? rest : rest.slice(0, hash);
  const value = valueText.trimEnd();
  return { name, value, line: i + 1, before, quote: '', after: rest.slice(value.length), span: 1 };
}

/** Where an opening `q` closes, escaped quotes (inside double quotes and backticks) skipped. */
function closingQuote(text: string, q: string): number {
  for (let k = 0; k < text.length; k++) {
    if (text[k] === '\\' && q !== "'") {
      k++;
      continue;
    }
    if (text[k] === q) return k;
  }
  return -1;
}

function unescapeDouble(raw: string): string {
  return raw.replace(/\\([nr"\\])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}
