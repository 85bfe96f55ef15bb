import { isDeepStrictEqual } from 'node:util';
import { parse } from 'smol-toml';
import { wrappedCommand, type InstallOptions, type InstallPlan, type Move } from './install.js';

/**
 * Codex's `config.toml` (`[mcp_servers.NAME]` with `command`, `args`, `env`, or `url` with `http_headers`). No TOML
 * library edits text in place, so each change is a replacement of one literal or one line in the server's own
 * table, and the result must parse to exactly the document expected (the original with those values changed);
 * anything else is refused before a byte is written: the file's comments, order and layout are never re-serialised.
 */
type Server = { command?: unknown; args?: unknown; env?: unknown; url?: unknown; http_headers?: unknown };

export function planCodexInstall(text: string, file: string, o: InstallOptions): InstallPlan {
  const expected = parseToml(text, file) as { mcp_servers?: Record<string, Server> };
  let out = text;
  const moves: Move[] = [];
  const notes: string[] = [];
  for (const [server, entry] of Object.entries(expected.mcp_servers ?? {})) {
    if (typeof entry !== 'object' || entry === null) continue;
    const remote = typeof entry.url === 'string' ? entry.url : null;
    const fields = (remote === null ? entry.env : entry.http_headers) as Record<string, unknown> | undefined;
    const where = remote === null ? 'env' : 'header';
    let host: string | null = null;
    if (remote !== null) {
      try { host = new URL(remote).hostname.toLowerCase(); } catch { notes.push(`${server}: its url is not a URL; left as it is`); continue; }
    }
    let moved = 0;
    for (const [field, value] of Object.entries(fields ?? {})) {
      if (typeof value !== 'string' || value.includes('PLACEHOLDER')) continue;
      const credential = where === 'header' ? /^Bearer\s+(\S+)$/i.exec(value.trim())?.[1] ?? value : value;
      const c = o.classify(field, credential, host);
      if (c === null) continue;
      if (c === 'unknown_host') {
        notes.push(`${server}: ${where} ${field} looks like a credential, but no preset knows its API: left in place; pass --host HOST to bind it`);
        continue;
      }
      const replacement = where === 'header' && credential !== value ? `Bearer ${c.placeholder}` : c.placeholder;
      const literals = [JSON.stringify(value), `'${value}'`].filter((l) => out.split(l).length === 2);
      if (literals.length !== 1) {
        notes.push(`${server}: ${where} ${field}: its value is written more than once, or escaped, in ${file}: left in place; move it by hand (keyswap secret set)`);
        continue;
      }
      out = out.replace(literals[0] as string, JSON.stringify(replacement));
      (fields as Record<string, unknown>)[field] = replacement;
      moves.push({ server, where, field, value: credential, secretName: o.secretName(server, where, field), classified: c });
      moved++;
    }
    if (remote === null && typeof entry.command === 'string' && wrappedCommand(entry) === null) {
      const args = Array.isArray(entry.args) ? entry.args.map(String) : [];
      const wrapped = [...o.wrapper.args, '--', entry.command, ...args];
      const section = sectionOf(out, server);
      const body = section === null ? null : out.slice(section.start, section.end);
      const commandLine = body === null ? null : /^([ \t]*command[ \t]*=[ \t]*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*')([ \t]*(?:#.*)?)$/m.exec(body);
      const argsLine = body === null ? null : /^([ \t]*args[ \t]*=[ \t]*)\[[^\]\n]*\]([ \t]*(?:#.*)?)$/m.exec(body);
      if (section === null || body === null || commandLine === null || (Array.isArray(entry.args) && argsLine === null)) {
        notes.push(`${server}: its command or args are not each on one line of [mcp_servers.${server}]: not wrapped; run it as ${o.wrapper.command} ${o.wrapper.args.join(' ')} -- ${entry.command}`);
      } else {
        let next = body.replace(commandLine[0], `${commandLine[1]}${JSON.stringify(o.wrapper.command)}${commandLine[3]}`);
        const list = `[${wrapped.map((a) => JSON.stringify(a)).join(', ')}]`;
        next = argsLine === null ? next.replace(/^([ \t]*command[ \t]*=.*)$/m, `$1\nargs = ${list}`) : next.replace(argsLine[0], `${argsLine[1]}${list}${argsLine[2]}`);
        out = out.slice(0, section.start) + next + out.slice(section.end);
        entry.command = o.wrapper.command;
        entry.args = wrapped;
        notes.push(`${server}: ${moved} credential(s) moved to keyswap; runs behind keyswap`);
      }
    } else if (moved > 0) {
      notes.push(`${server}: ${moved} credential(s) moved to keyswap`);
    }
  }
  if (!sameDocument(parseToml(out, file), expected)) throw new Error(`${file}: keyswap could not edit it safely in place (the result would not read as intended); nothing was written; move the tokens by hand`);
  return { text: out, moves, notes };
}

export function planCodexUninstall(text: string, file: string): { text: string; servers: string[] } {
  const expected = parseToml(text, file) as { mcp_servers?: Record<string, Server> };
  let out = text;
  const servers: string[] = [];
  for (const [server, entry] of Object.entries(expected.mcp_servers ?? {})) {
    const original = typeof entry === 'object' && entry !== null ? wrappedCommand(entry) : null;
    const section = sectionOf(out, server);
    if (original === null || section === null) continue;
    const body = out.slice(section.start, section.end)
      .replace(/^([ \t]*command[ \t]*=[ \t]*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*')/m, (_m, k: string) => `${k}${JSON.stringify(original.command)}`)
      .replace(/^([ \t]*args[ \t]*=[ \t]*)\[[^\]\n]*\]/m, (_m, k: string) => `${k}[${original.args.map((a) => JSON.stringify(a)).join(', ')}]`);
    out = out.slice(0, section.start) + body + out.slice(section.end);
    entry.command = original.command;
    entry.args = original.args;
    servers.push(server);
  }
  if (!sameDocument(parseToml(out, file), expected)) throw new Error(`${file}: keyswap could not edit it safely in place; nothing was written`);
  return { text: out, servers };
}

/** Equal as data (smol-toml's tables have no prototype; dates compare by their text). */
function sameDocument(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a)) as unknown, JSON.parse(JSON.stringify(b)) as unknown);
}

function parseToml(text: string, file: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (err) {
    const line = (err as { line?: number }).line;
    throw new Error(`${file}${line === undefined ? '' : `:${line}`}: not TOML keyswap can read (${(err as Error).message.split('\n')[0]})`);
  }
}

/** The text of `[mcp_servers.NAME]` up to the next table header (its own `.env` sub-table is separate). */
function sectionOf(text: string, server: string): { start: number; end: number } | null {
  const name = server.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const header = new RegExp(`^[ \\t]*\\[[ \\t]*mcp_servers[ \\t]*\\.[ \\t]*(?:${name}|"${name}"|'${name}')[ \\t]*\\][ \\t]*(?:#.*)?$`, 'm').exec(text);
  if (header === null) return null;
  const start = header.index + header[0].length;
  const rest = /^[ \t]*\[/m.exec(text.slice(start));
  return { start, end: rest === null ? text.length : start + rest.index };
}
