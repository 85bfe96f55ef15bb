import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chainsOf, describeFinding, loadAuditKey, readAuditFile, rotatedFiles, toOcsf, verifyAuditFiles, type ChainHead } from '../audit/index.js';
import { VERSION } from './version.js';
import { loadConfig } from '../config/index.js';
import { auditKeyLocation } from './audit-key.js';
import { CliError, EXIT } from './exit-codes.js';
import { count, type CliIo } from './io.js';

export const AUDIT_USAGE = `usage: keyswap audit verify [--key FILE | --config FILE] [--from SEQ:MAC] [--head SEQ:MAC] FILE…
       keyswap audit tail FILE [N]     (the last N records, default 20)
       keyswap audit ocsf FILE         (FILE's records as OCSF events, one per line: audit.format: ocsf's copy, rebuilt)
verify checks every record's MAC under the audit key and every link, oldest file first; each file given without
its rotated files (FILE.<timestamp>, beside it) has them checked before it. Files of several replicas (each names
its writer in chain_id) are sorted into one chain per replica and each chain is checked on its own. The chain must start at seq 1,
or after --from (the head keyswap logged when older files were removed). --head is an 'audit head' line from
keyswap's log (the journal): the files must still hold that record, so a tail cut off shows. The key: --key FILE,
else the systemd credential keyswap-audit-key, else audit.key_file of --config (default ./keyswap.yaml).
Exits 0 when no finding is tampering (a torn line after kill -9 is reported, not failed), 1 otherwise.`;

export async function auditCommand(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === 'verify') return verify(rest, io);
  if (verb === 'tail') {
    const [file, n] = rest;
    if (file === undefined) throw new CliError(`'audit tail' needs a FILE\n${AUDIT_USAGE}`, EXIT.usage);
    const count = n === undefined ? 20 : Number(n);
    if (!Number.isInteger(count) || count < 1) throw new CliError('N must be a positive whole number', EXIT.usage);
    const { records } = await readAuditFile(path.resolve(io.cwd, file));
    for (const r of records.slice(-count)) io.stdout.write(`${JSON.stringify(r)}\n`);
    return EXIT.ok;
  }
  if (verb === 'ocsf') {
    const [file] = rest;
    if (file === undefined) throw new CliError(`'audit ocsf' needs a FILE\n${AUDIT_USAGE}`, EXIT.usage);
    const { records } = await readAuditFile(path.resolve(io.cwd, file));
    for (const r of records) io.stdout.write(`${JSON.stringify(toOcsf(r, VERSION))}\n`);
    return EXIT.ok;
  }
  throw new CliError(verb === undefined ? `'keyswap audit' needs a verb\n${AUDIT_USAGE}` : `unknown audit verb '${verb}'\n${AUDIT_USAGE}`, EXIT.usage);
}

async function verify(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { key: { type: 'string' }, config: { type: 'string' }, from: { type: 'string' }, head: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new CliError(`'audit verify' needs at least one FILE\n${AUDIT_USAGE}`, EXIT.usage);
  const given = positionals.map((f) => path.resolve(io.cwd, f));
  // A file given alone brings its rotated files; one given with them is checked as listed.
  const files = given.flatMap((f) => (given.some((g) => g !== f && g.startsWith(`${f}.`)) ? [f] : [...rotatedFiles(f).filter((r) => !given.includes(r)), f]));
  const key = await loadAuditKey(await keyFile(values, io), { create: false });
  const from = values.from === undefined ? undefined : parseHead('--from', values.from);
  const head = values.head === undefined ? undefined : parseHead('--head', values.head);
  const unreadable = (err: unknown): CliError => new CliError(`cannot read ${(err as NodeJS.ErrnoException).path ?? files.join(', ')} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.runtime);
  const chains = await chainsOf(files).catch((err: unknown) => { throw unreadable(err); });
  if (chains.length > 1 && (from !== undefined || head !== undefined)) throw new CliError('--from and --head name one chain: give the files of one replica with them', EXIT.usage);
  let intact = true;
  for (const c of chains) {
    if (chains.length > 1) io.stdout.write(`chain ${c.name} (${count(c.files.length, 'file')}):\n`);
    let result;
    try {
      result = await verifyAuditFiles(c.files, { key, ...(from ? { from } : {}), ...(head ? { head } : {}) });
    } catch (err) {
      throw unreadable(err);
    }
    const rotated = c.files.filter((f) => !given.includes(f));
    if (rotated.length > 0) io.stdout.write(`checked ${rotated.length} rotated file(s) first: ${rotated.map((f) => path.basename(f)).join(', ')}\n`);
    for (const f of result.findings) io.stdout.write(`${describeFinding(f)}\n`);
    if (result.head !== null) {
      const end = result.closed ? 'ends with proxy_stop: keyswap shut down cleanly' : 'no proxy_stop after it: keyswap is running or was killed, or records were cut from the end (compare with the last "audit head" in keyswap\'s log, or pass it as --head)';
      io.stdout.write(`head: ${result.head.seq}:${result.head.hash} (${end})\n`);
    }
    io.stdout.write(result.intact ? `intact: ${count(result.records, 'record')}, every MAC and link holds\n` : `NOT intact: the first problem is listed first\n`);
    intact &&= result.intact;
  }
  if (chains.length > 1) io.stdout.write(intact ? `all ${chains.length} chains intact\n` : `NOT every chain is intact\n`);
  return intact ? EXIT.ok : EXIT.runtime;
}

async function keyFile(values: { key?: string | undefined; config?: string | undefined }, io: CliIo): Promise<string> {
  if (values.key !== undefined) return path.resolve(io.cwd, values.key);
  const configFile = path.resolve(io.cwd, values.config ?? 'keyswap.yaml');
  if (values.config === undefined && !existsSync(configFile)) {
    const credential = io.env.CREDENTIALS_DIRECTORY ? path.join(io.env.CREDENTIALS_DIRECTORY, 'keyswap-audit-key') : null;
    if (credential !== null && existsSync(credential)) return credential;
    throw new CliError(`'audit verify' needs the audit key: --key FILE, or --config FILE naming it (no ./keyswap.yaml here)`, EXIT.usage);
  }
  return auditKeyLocation(await loadConfig(configFile), io.env).file;
}

function parseHead(flag: string, text: string): ChainHead {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(text);
  if (m === null) throw new CliError(`${flag} ${text}: expected SEQ:MAC, as keyswap logs it ("audit_head":"12:3f…")`, EXIT.usage);
  return { seq: Number(m[1]), hash: m[2] as string };
}
