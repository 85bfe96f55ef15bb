import { applyEdits, modify, parse, visit, type FormattingOptions, type ParseError } from 'jsonc-parser';

/** Where an MCP client keeps its servers: `mcpServers` (Claude Code, Claude Desktop, Cursor) or `servers` (VS Code). */
export type McpConfigShape = 'mcpServers' | 'servers';

/** What a credential found in a server's config becomes: a secret, its injection and the bindings it may go to. */
export interface Classified {
  readonly label: string;
  readonly placeholder: string;
  /** How the API is sent the key; for a remote server's header, the header it was in. */
  readonly sites: readonly { readonly header: string; readonly format: string }[];
  readonly bindings: readonly { readonly host: string; readonly methods: readonly string[] | null; readonly paths: readonly string[] | null }[];
}

/** One credential taken out of the file: where it was, its value (for the store), and what replaces it. */
export interface Move {
  readonly server: string;
  readonly where: 'env' | 'header';
  readonly field: string;
  readonly value: string;
  readonly secretName: string;
  readonly classified: Classified;
}

export interface InstallPlan {
  /** The file as it will be written: every credential a placeholder, every stdio server run behind keyswap. */
  readonly text: string;
  readonly moves: readonly Move[];
  /** Servers changed, and why others were not. */
  readonly notes: readonly string[];
}

export interface InstallOptions {
  /** A credential's preset by its variable or header name and value; null when it is not one. */
  readonly classify: (name: string, value: string, remoteHost: string | null) => Classified | 'unknown_host' | null;
  /** The secret name a credential is stored under (unique in the config). */
  readonly secretName: (server: string, where: 'env' | 'header', field: string) => string;
  /** The command line that runs a stdio server behind keyswap: the wrapper's command and its args before the server's. */
  readonly wrapper: { readonly command: string; readonly args: readonly string[] };
}

type ServerEntry = { command?: unknown; args?: unknown; env?: unknown; url?: unknown; serverUrl?: unknown; httpUrl?: unknown; headers?: unknown; type?: unknown };

/** Where the server maps are in the parsed file: the top-level map, and (Claude Code) each project's. */
function serverMaps(root: Record<string, unknown>, shape: McpConfigShape): { readonly path: (string | number)[]; readonly map: Record<string, ServerEntry> }[] {
  const out: { path: (string | number)[]; map: Record<string, ServerEntry> }[] = [];
  const at = root[shape];
  if (isObject(at)) out.push({ path: [shape], map: at as Record<string, ServerEntry> });
  if (shape === 'mcpServers' && isObject(root.projects)) {
    for (const [project, p] of Object.entries(root.projects as Record<string, unknown>)) {
      if (isObject(p) && isObject((p as Record<string, unknown>).mcpServers)) out.push({ path: ['projects', project, 'mcpServers'], map: (p as Record<string, unknown>).mcpServers as Record<string, ServerEntry> });
    }
  }
  return out;
}

const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses an MCP client's JSON (comments and trailing commas allowed, as VS Code's is): a clear error otherwise. A
 * key written twice in one object is refused: readers take the last, an editor may change the first, and a
 * placeholder written where nobody reads it would leave the real key in use. So is `__proto__`, which JavaScript
 * parsers read differently from one another.
 */
export function parseMcpConfig(text: string, file: string): Record<string, unknown> {
  const errors: ParseError[] = [];
  const root = parse(text, errors, { allowTrailingComma: true, disallowComments: false }) as unknown;
  const lineOf = (offset: number): number => text.slice(0, offset).split('\n').length;
  if (errors.length > 0 || !isObject(root)) {
    const at = errors[0] === undefined ? 0 : lineOf(errors[0].offset);
    throw new Error(`${file}${at > 0 ? `:${at}` : ''}: not a JSON object keyswap can read (an MCP client's config is one)`);
  }
  const open: Set<string>[] = [];
  let problem: string | null = null;
  visit(text, {
    onObjectBegin: () => { open.push(new Set()); },
    onObjectEnd: () => { open.pop(); },
    onObjectProperty: (key, offset) => {
      const keys = open.at(-1);
      if (problem !== null || keys === undefined) return;
      if (key === '__proto__') problem = `${file}:${lineOf(offset)}: a key named __proto__: keyswap does not edit such a file; rename it`;
      else if (keys.has(key)) problem = `${file}:${lineOf(offset)}: "${key.slice(0, 64)}" is written twice in one object: clients read the last one; remove the other and run again`;
      keys.add(key);
    },
  }, { allowTrailingComma: true, disallowComments: false });
  if (problem !== null) throw new Error(problem);
  return root as Record<string, unknown>;
}

/**
 * The text with every string under a server's `env`, `headers` or `args` that is not a placeholder replaced by
 * *** at its place in the source, whatever escapes spell it: what --dry-run shows of a file holding credentials.
 */
export function maskedJson(text: string): string {
  const ranges: [number, number][] = [];
  visit(text, {
    onLiteralValue: (value, offset, length, _line, _col, path) => {
      const p = path();
      if (typeof value !== 'string' || value.includes('PLACEHOLDER')) return;
      const inValues = p.some((k) => k === 'env' || k === 'headers');
      if ((inValues && value.length >= 8) || (p.includes('args') && looksSecret(value))) ranges.push([offset, offset + length]);
    },
  }, { allowTrailingComma: true, disallowComments: false });
  let out = text;
  for (const [from, to] of ranges.reverse()) out = `${out.slice(0, from)}"***"${out.slice(to)}`;
  return out;
}

/**
 * Is this server already run behind keyswap (by any install: another keyswap path or config)? `keyswap run … --`
 * or `node …/cli/main.js run … --`, then the server's own command line.
 */
export function wrappedCommand(entry: ServerEntry): { command: string; args: string[] } | null {
  if (typeof entry.command !== 'string' || !Array.isArray(entry.args)) return null;
  const args = (entry.args as unknown[]).map(String);
  const runAt = /(^|\/)keyswap$/.test(entry.command) ? 0 : /(^|\/)cli\/main\.js$/.test(args[0] ?? '') ? 1 : -1;
  if (runAt < 0 || args[runAt] !== 'run') return null;
  const dash = args.indexOf('--', runAt);
  if (dash < 0 || args[dash + 1] === undefined) return null;
  return { command: args[dash + 1] as string, args: args.slice(dash + 2) };
}

/**
 * The file rewritten: each credential in a stdio server's `env` or a remote server's `headers` replaced by a
 * placeholder, and each stdio server's command run behind keyswap. jsonc-parser edits the text in place, so
 * formatting, comments and key order stay as they were. Idempotent: placeholders and wrapped servers are left be.
 */
export function planInstall(text: string, file: string, shape: McpConfigShape, o: InstallOptions): InstallPlan {
  const root = parseMcpConfig(text, file);
  const formatting = formattingOf(text);
  let out = text;
  const set = (path: (string | number)[], value: unknown): void => { out = applyEdits(out, modify(out, path, value, { formattingOptions: formatting })); };
  const moves: Move[] = [];
  const notes: string[] = [];
  for (const { path, map } of serverMaps(root, shape)) {
    for (const [server, entry] of Object.entries(map)) {
      if (!isObject(entry)) continue;
      const remote = typeof entry.url === 'string' ? entry.url : typeof entry.serverUrl === 'string' ? entry.serverUrl : typeof entry.httpUrl === 'string' ? entry.httpUrl : null;
      const fields = remote !== null ? entry.headers : entry.env;
      const where = remote !== null ? 'header' : 'env';
      let host: string | null = null;
      if (remote !== null) {
        try {
          host = new URL(remote).hostname.toLowerCase();
        } catch {
          notes.push(`${server}: its url is not a URL; left as it is`);
          continue;
        }
      }
      let moved = 0;
      for (const [field, value] of Object.entries(isObject(fields) ? (fields as Record<string, unknown>) : {})) {
        if (typeof value !== 'string' || value.includes('PLACEHOLDER')) continue;
        const credential = where === 'header' ? bearer(value) : value;
        const c = o.classify(field, credential, host);
        if (c === null) continue;
        if (c === 'unknown_host') {
          notes.push(`${server}: ${where} ${field} looks like a credential, but no preset knows its API: left in place; pass --host HOST to bind it`);
          continue;
        }
        const secretName = o.secretName(server, where, field);
        moves.push({ server, where, field, value: credential, secretName, classified: c });
        set([...path, server, where === 'header' ? 'headers' : 'env', field], where === 'header' && credential !== value ? `Bearer ${c.placeholder}` : c.placeholder);
        moved++;
      }
      if (remote === null && typeof entry.command === 'string' && wrappedCommand(entry) === null) {
        const args = Array.isArray(entry.args) ? entry.args.map(String) : [];
        set([...path, server, 'command'], o.wrapper.command);
        set([...path, server, 'args'], [...o.wrapper.args, '--', entry.command, ...args]);
        notes.push(`${server}: ${moved} credential(s) moved to keyswap; runs behind keyswap`);
      } else if (moved > 0) {
        notes.push(`${server}: ${moved} credential(s) moved to keyswap${remote !== null ? `; the agent's requests to ${host} must go through keyswap (keyswap run -- <your MCP client>)` : ''}`);
      }
    }
  }
  return { text: out, moves, notes };
}

/** The same file with every stdio server keyswap wraps unwrapped: placeholders stay (never the keys). */
export function planUninstall(text: string, file: string, shape: McpConfigShape): { text: string; servers: string[] } {
  const root = parseMcpConfig(text, file);
  const formatting = formattingOf(text);
  let out = text;
  const servers: string[] = [];
  for (const { path, map } of serverMaps(root, shape)) {
    for (const [server, entry] of Object.entries(map)) {
      const original = isObject(entry) ? wrappedCommand(entry) : null;
      if (original === null) continue;
      out = applyEdits(out, modify(out, [...path, server, 'command'], original.command, { formattingOptions: formatting }));
      out = applyEdits(out, modify(out, [...path, server, 'args'], original.args, { formattingOptions: formatting }));
      servers.push(server);
    }
  }
  return { text: out, servers };
}

/** A string of a command line that may be a credential: long, one word, not a path or a package name. */
export function looksSecret(value: string): boolean {
  return value.length >= 16 && !/[\s/]/.test(value) && /\d/.test(value) && /[A-Za-z]/.test(value);
}

/** Codex's TOML as --dry-run shows it: every quoted string that may be a credential (by its shape) is ***. */
export function maskedToml(text: string): string {
  return text.replace(/"(?:[^"\\\n]|\\.)*"|'[^'\n]*'/g, (literal) => {
    let value = literal.slice(1, -1);
    try { if (literal.startsWith('"')) value = JSON.parse(literal) as string; } catch { /* as written */ }
    return !value.includes('PLACEHOLDER') && (looksSecret(value) || (value.length >= 16 && !/[\s/]/.test(value))) ? '"***"' : literal;
  });
}

/** `Bearer TOKEN` → TOKEN; any other header value as it is. */
function bearer(value: string): string {
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m?.[1] ?? value;
}

/** The file's own indentation, so inserted text looks like the rest. */
function formattingOf(text: string): FormattingOptions {
  const indent = /\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
  return { insertSpaces: !indent.startsWith('\t'), tabSize: indent.startsWith('\t') ? 1 : indent.length, eol: text.includes('\r\n') ? '\r\n' : '\n' };
}
