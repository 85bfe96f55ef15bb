import path from 'node:path';
import { describeFinding, readAuditFile, verifyAuditFiles } from '../audit/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const AUDIT_USAGE = `usage: keyswap audit verify FILE…   (oldest first: rotated files, then the current one)
       keyswap audit tail FILE [N]     (the last N records, default 20)
verify exits 0 when every hash link holds (a torn last line after kill -9 is reported, not failed), 1 otherwise.`;

export async function auditCommand(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === 'verify') {
    if (rest.length === 0) throw new CliError(`'audit verify' needs at least one FILE\n${AUDIT_USAGE}`, EXIT.usage);
    const files = rest.map((f) => path.resolve(io.cwd, f));
    let result;
    try {
      result = await verifyAuditFiles(files);
    } catch (err) {
      throw new CliError(`cannot read ${(err as NodeJS.ErrnoException).path ?? files.join(', ')} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.runtime);
    }
    for (const f of result.findings) io.stdout.write(`${describeFinding(f)}\n`);
    io.stdout.write(result.intact ? `intact: ${result.records} records, every hash link holds\n` : `NOT intact: the first problem is listed first\n`);
    return result.intact ? EXIT.ok : EXIT.runtime;
  }
  if (verb === 'tail') {
    const [file, n] = rest;
    if (file === undefined) throw new CliError(`'audit tail' needs a FILE\n${AUDIT_USAGE}`, EXIT.usage);
    const count = n === undefined ? 20 : Number(n);
    if (!Number.isInteger(count) || count < 1) throw new CliError('N must be a positive whole number', EXIT.usage);
    const { records } = await readAuditFile(path.resolve(io.cwd, file));
    for (const r of records.slice(-count)) io.stdout.write(`${JSON.stringify(r)}\n`);
    return EXIT.ok;
  }
  throw new CliError(`unknown audit verb '${verb ?? ''}'\n${AUDIT_USAGE}`, EXIT.usage);
}
