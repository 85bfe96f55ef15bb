import path from 'node:path';
import { parseArgs } from 'node:util';
import { namesToFetch, loadConfig, type Config, type SourceRef } from '../config/index.js';
import { readStore, resolveKeySource } from '../secrets/index.js';
import { EXIT } from './exit-codes.js';
import { count, type CliIo } from './io.js';
import { isLoopback } from './loopback.js';

export const CHECK_USAGE = `usage: keyswap check [--config FILE]

Lints a config beyond its schema: bindings wider than an agent needs, wildcards, plain http, secrets nothing can
reach or nothing uses. Exit 0: nothing found; 1: findings (each file:line: field: what, and the fix); 2: the
config is invalid.`;

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Hosts where a write moves money, changes code or infrastructure, or speaks for someone. */
const SENSITIVE = [/(^|\.)github\.com$/, /(^|\.)gitlab\.com$/, /^api\.stripe\.com$/, /(^|\.)slack\.com$/, /\.amazonaws\.com$/, /^api\.cloudflare\.com$/, /(^|\.)twilio\.com$/, /^api\.paypal\.com$/, /(^|\.)googleapis\.com$/, /^management\.azure\.com$/];

interface Finding { readonly at: SourceRef | { file: string; line: number; field: string }; readonly text: string }

export async function checkCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, strict: true });
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const findings = [...lintBindings(config), ...lintTop(config), ...(await lintStore(config, io))];
  for (const w of config.warnings) io.stdout.write(`${w}\n`);
  for (const f of findings) io.stdout.write(`${path.relative(io.cwd, f.at.file) || f.at.file}:${f.at.line}: ${f.at.field}: ${f.text}\n`);
  io.stdout.write(findings.length === 0 ? `${values.config}: no findings (${count(config.secrets.length, 'secret')})\n` : `\n${findings.length} finding${findings.length === 1 ? '' : 's'}; \`keyswap explain METHOD URL\` shows what a request would get.\n`);
  return findings.length === 0 ? EXIT.ok : EXIT.runtime;
}

function lintBindings(config: Config): Finding[] {
  const out: Finding[] = [];
  const reachable = config.clients === null ? null : new Set([...config.clients.values()].flatMap((c) => [...c.secrets]));
  for (const s of config.secrets) {
    if (reachable !== null && !reachable.has(s.name)) out.push({ at: s.source, text: `no client lists ${s.name} (clients: … secrets:), so none of its bindings can be reached; add it to a client or remove it` });
    for (const b of s.bindings) {
      const at = b.source;
      if (b.methods === null) out.push({ at, text: `${b.host}: every method is allowed, writes included; list the ones the agent needs (methods: [GET, POST])` });
      else if (SENSITIVE.some((r) => r.test(b.host.replace(/^\*\./, ''))) && b.methods.some((m) => WRITES.has(m))) {
        out.push({ at, text: `${b.host}: allows ${b.methods.filter((m) => WRITES.has(m)).join(', ')} on a host where writes change code, money or infrastructure; keep them only if the agent must write, and scope paths:` });
      }
      if (b.paths === null) out.push({ at, text: `${b.host}: every path is allowed; scope it (paths: ["/v1/**"])` });
      if (b.host.startsWith('*.') && b.subdomains === null) out.push({ at, text: `${b.host}: a wildcard host hands the secret to every name under it; list hosts (or subdomains:)` });
      if (b.allowPlaintext) out.push({ at, text: `${b.host}: allow_plaintext sends the secret unencrypted; anyone on the path can read it` });
    }
  }
  return out;
}

function lintTop(config: Config): Finding[] {
  const out: Finding[] = [];
  const at = (field: string): Finding['at'] => ({ file: config.file, line: 1, field });
  if (config.tlsTermination === 'all') out.push({ at: at('tls_termination'), text: 'all: every HTTPS connection is decrypted, unbound ones too; bound is enough to inject' });
  if (!isLoopback(config.listen.host)) out.push({ at: at('listen'), text: `${config.listen.host} is not loopback: anything that can reach it can use the secrets` });
  return out;
}

/** Secrets in the embedded store that no secret in the config uses. */
async function lintStore(config: Config, io: CliIo): Promise<Finding[]> {
  if (config.backend.type !== 'file') return [];
  const used = new Set(config.secrets.flatMap((s) => namesToFetch(s)));
  let stored: string[];
  try {
    stored = [...(await readStore(config.backend.path, await resolveKeySource(config.backend, io.env))).entries.keys()];
  } catch {
    return []; // no store yet, or unreadable: `keyswap doctor` reports that
  }
  return stored.filter((n) => !used.has(n)).map((n) => ({ at: { file: config.file, line: 1, field: 'secrets' }, text: `${n} is in the store but no secret uses it; bind it, or remove it with: keyswap secret rm ${n}` }));
}
