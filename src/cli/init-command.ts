import { constants, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { loadConfig, type Config } from '../config/index.js';
import { decryptedHosts } from '../policy/index.js';
import { resolveKeySource, StoreError, updateStore } from '../secrets/index.js';
import { openCa } from '../tls/index.js';
import { ROTATE_FIX } from './ca-requirements.js';
import { addSecret } from './config-edit.js';
import { DotEnv } from './dotenv.js';
import { CliError, EXIT } from './exit-codes.js';
import { prepareStateDir } from './state-dir.js';
import type { CliIo } from './io.js';
import { mintPlaceholder } from './placeholder.js';
import { looksLikeRealKey, placeholderPrefixFor, presetFor, type Preset } from './presets.js';

export const INIT_USAGE = `usage: keyswap init [--config FILE] [--from-env ENVFILE]

Creates keyswap.yaml (if missing), the embedded encrypted store, and keyswap's CA once a host is bound (it is
constrained to the bound hosts). With --from-env, every provider key in ENVFILE (found by variable name or by
value shape) moves into the store; ENVFILE is rewritten in place with fresh placeholders (same order and
comments, no backup holding the keys) and keyswap.yaml gets a binding for each from the built-in provider
presets. Values are never printed.`;

const BASE_CONFIG = `# keyswap.yaml, written by \`keyswap init\`. Every key is documented in docs/configuration.md.
version: 1
listen: 127.0.0.1:14322
state_dir: ./certs            # keyswap's CA (ca.pem, ca-key.pem 0600), the encrypted store and its key
tls_termination: bound        # only hosts named below are decrypted; everything else is an opaque tunnel
audit: { path: ./audit.jsonl }
backend: { type: file }       # the embedded AES-256-GCM store at ./certs/secrets.enc
secrets: {}
`;

interface Moved { readonly name: string; readonly preset: Preset; readonly line: number; readonly value: string; readonly placeholder: string; readonly shapeMatched: boolean }

export async function initCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, 'from-env': { type: 'string' } }, strict: true });
  const configFile = path.resolve(io.cwd, values.config);
  if (await createIfMissing(configFile, BASE_CONFIG)) io.stdout.write(`created ${values.config}\n`);
  else io.stdout.write(`using the existing ${values.config}\n`);
  const config = await loadConfig(configFile);

  await prepareStateDir(config.stateDir, io);
  if (values['from-env'] === undefined) {
    await writeCa(config, io);
    io.stdout.write(`\nnext: store a key with \`keyswap secret set NAME\` and bind it in ${values.config}, or move a .env's keys in one step: keyswap init --from-env .env\n`);
    return EXIT.ok;
  }
  const code = await fromEnv(path.resolve(io.cwd, values['from-env']), values['from-env'], config, io);
  // Order matters: the CA is made after the bindings were added, so its name constraints include their hosts.
  await writeCa(await loadConfig(configFile), io);
  return code;
}

/**
 * The CA, constrained to the hosts the config decrypts. With nothing bound yet it is left to the first
 * `keyswap serve`: a CA made now could sign for no host, and the first binding would need a rotation.
 */
async function writeCa(config: Config, io: CliIo): Promise<void> {
  const scope = decryptedHosts(config);
  if (scope.kind === 'hosts' && scope.hosts.length === 0 && !(await hasCa(config.stateDir))) {
    io.stdout.write('CA: not made yet: no host is bound; keyswap serve makes it at its first start, constrained to the hosts bound then\n');
    return;
  }
  const ca = await openCa(config.stateDir, { create: true, scope });
  io.stdout.write(`CA: ${ca.certPath} (trusted only by the agents keyswap runs; never install it system-wide)\n`);
  const missing = ca.uncovered(scope);
  if (missing.length > 0) io.stdout.write(`CA: its name constraints do not cover ${missing.join(', ')}; keyswap serve refuses to start until you run ${ROTATE_FIX}\n`);
}

async function hasCa(stateDir: string): Promise<boolean> {
  return stat(path.join(stateDir, 'ca.pem')).then(() => true, () => false);
}

async function createIfMissing(file: string, content: string): Promise<boolean> {
  try {
    const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    await fh.writeFile(content);
    await fh.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function fromEnv(envPath: string, envName: string, config: Config, io: CliIo): Promise<number> {
  const spec = config.backend;
  if (spec.type !== 'file') {
    throw new CliError(`${config.file}: backend.type is ${spec.type}; init --from-env moves keys into the embedded store (backend type file). Store them with your ${spec.type} backend's own tools.`, EXIT.usage);
  }
  let text: string;
  let mode: number;
  try {
    text = await readFile(envPath, 'utf8');
    mode = (await stat(envPath)).mode & 0o777;
  } catch (err) {
    throw new CliError(`--from-env ${envName}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.usage);
  }
  const env = DotEnv.parse(text);
  const entries = env.entries;
  const configured = new Set(config.secrets.map((s) => s.name));
  // Loaders take the last assignment of a name: that is the value moved, and every line holding it is rewritten.
  const inForce = new Map(entries.map((e) => [e.name, e]));
  const moved: Moved[] = [];
  const movedLines = new Set<number>();
  let refused = 0;
  let untouched = 0;
  entries.forEach((e, i) => {
    if (entries.length > 500 && i % 500 === 0) io.stderr.write(`scanning ${envName}: ${i}/${entries.length} variables\n`);
    const where = `${envName}:${e.line}: ${e.name}`;
    if (e.value.includes('PLACEHOLDER-')) {
      io.stdout.write(`${where}: already a placeholder; nothing to do\n`);
      return;
    }
    const last = inForce.get(e.name) as typeof e;
    const preset = presetFor(e.name, last.value);
    if (preset === null || e.value === '') {
      untouched++;
      return;
    }
    if (e !== last) {
      // An earlier assignment loaders never read: rewritten with the placeholder when it holds the same key.
      if (e.value === last.value) movedLines.add(e.line);
      return;
    }
    if (configured.has(e.name)) {
      io.stdout.write(`${where}: not moved: ${config.file} already has a secret ${e.name} (an earlier init?). Remove it there first, or rename the variable.\n`);
      refused++;
      return;
    }
    movedLines.add(e.line);
    moved.push({ name: e.name, preset, line: e.line, value: e.value, placeholder: mintPlaceholder(placeholderPrefixFor(preset, e.value)), shapeMatched: preset.shape?.test(e.value) ?? false });
  });
  const left = keysLeft(env, movedLines, new Set(moved.map((m) => m.name)));
  warnAboutCopies(envPath, envName, io);
  if (moved.length === 0) {
    io.stdout.write(`no provider keys to move in ${envName} (${untouched} other variable${untouched === 1 ? '' : 's'} left unchanged)\n`);
    reportLeft(left, envName, io);
    return refused > 0 || left.length > 0 ? EXIT.runtime : EXIT.ok;
  }

  // Order matters for a crash at any point: the store first (a value is never only in a file keyswap cannot read),
  // then the bindings, then the .env, each replaced atomically; until the last step the keys are still in the .env.
  try {
    const source = await resolveKeySource(spec, io.env);
    await updateStore(spec.path, source, (store) => {
      for (const m of moved) store.set(m.name, { value: m.value, updatedAt: new Date().toISOString() });
      return true;
    });
  } catch (err) {
    if (err instanceof StoreError) throw new CliError(err.message, EXIT.runtime);
    throw err;
  }
  const doc = parseDocument(await readFile(config.file, 'utf8'));
  for (const m of moved) addSecret(doc, { name: m.name, placeholder: m.placeholder, sites: m.preset.sites, bindings: m.preset.bindings, route: m.preset.route });
  await writeFileAtomic(config.file, doc.toString({ lineWidth: 0 }), ((await stat(config.file)).mode & 0o777) | 0o600, { followOperatorLink: true });
  await loadConfig(config.file); // what was written must load: a bug here must not leave a broken config silently
  // From the last line up: a multi-line value replaced by one line leaves the lines above where they were.
  const placeholderOf = new Map(moved.map((m) => [m.name, m.placeholder]));
  for (const e of [...entries].reverse()) {
    const ph = placeholderOf.get(e.name);
    if (ph !== undefined && movedLines.has(e.line)) env.replace(e.line, ph);
  }
  await writeFileAtomic(envPath, env.toString(), mode, { followOperatorLink: true });

  for (const m of moved) {
    const b = m.preset.bindings.map((x) => `${x.host} ${x.methods.join('/')}`).join(', ');
    const note = m.shapeMatched ? '' : ` (matched by name; the value does not look like a ${m.preset.label} key)`;
    io.stdout.write(`${envName}:${m.line}: ${m.name}: ${m.preset.label} key moved to the encrypted store; placeholder written; binding ${b}${note}\n`);
  }
  io.stdout.write(
    `\nmoved ${moved.length} key${moved.length === 1 ? '' : 's'}; ${untouched} other variable${untouched === 1 ? '' : 's'} left unchanged.\n` +
      `next: keyswap run --env-file ${envName} -- <your agent>   (review the bindings in ${path.basename(config.file)}; \`keyswap check\` lints them)\n`,
  );
  reportLeft(left, envName, io);
  return refused > 0 || left.length > 0 ? EXIT.runtime : EXIT.ok;
}

/**
 * Lines that still look like a provider key once init is done: an assignment it did not move (an earlier,
 * different value of a name; a name the config already binds) or text no loader reads as an assignment. A real key
 * left in clear must never pass in silence.
 */
function keysLeft(env: DotEnv, movedLines: ReadonlySet<number>, movedNames: ReadonlySet<string>): { line: number; label: string }[] {
  const out: { line: number; label: string }[] = [];
  for (const e of env.entries) {
    if (movedLines.has(e.line) || e.value.includes('PLACEHOLDER-')) continue;
    const label = looksLikeRealKey(e.name, e.value) ?? (movedNames.has(e.name) ? 'provider' : null);
    if (label !== null) out.push({ line: e.line, label });
    // A value over several lines may hold a key on any of them (where loaders disagree on where it ends).
    else if (e.value.includes('\n')) {
      const inside = e.value.split('\n').findIndex((text) => tokenKeyLabel(text) !== null);
      if (inside >= 0) out.push({ line: e.line + inside, label: tokenKeyLabel(e.value.split('\n')[inside] as string) as string });
    }
  }
  for (const l of env.otherLines) {
    const label = tokenKeyLabel(l.text);
    if (label !== null) out.push({ line: l.line, label });
  }
  return out.sort((a, b) => a.line - b.line);
}

/** The provider of the first token of `text` that looks like a real key, if any. */
function tokenKeyLabel(text: string): string | null {
  return text.split(/[\s=:'"`,;]+/).map((t) => looksLikeRealKey('', t)).find((x) => x !== null) ?? null;
}

function reportLeft(left: readonly { line: number; label: string }[], envName: string, io: CliIo): void {
  for (const l of left) io.stderr.write(`keyswap: ${envName}:${l.line}: still holds what looks like a ${l.label} key, not moved (a second value under a name, a name the config already binds, or a line no loader reads as NAME=value): move or remove it by hand\n`);
}

/** A .env that git tracks keeps every key in its history; one with another hard link keeps them under that name. */
function warnAboutCopies(envPath: string, envName: string, io: CliIo): void {
  const tracked = spawnSync('git', ['ls-files', '--error-unmatch', path.basename(envPath)], { cwd: path.dirname(envPath), stdio: 'ignore' });
  if (tracked.status === 0) io.stderr.write(`keyswap: warning: ${envName} is tracked by git: its history still holds the keys moved now; rotate them, and stop tracking the file (git rm --cached ${envName})\n`);
  try {
    const links = statSync(envPath).nlink;
    if (links > 1) io.stderr.write(`keyswap: warning: ${envName} has ${links - 1} other hard link${links === 2 ? '' : 's'}: rewriting it replaces this name only, and the other name${links === 2 ? '' : 's'} still hold${links === 2 ? 's' : ''} the keys; remove ${links === 2 ? 'it' : 'them'} (find / -samefile ${envName})\n`);
  } catch {
    // Read once already: a file gone since is reported by the write below.
  }
}

