import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type BackendSpec } from '../config/index.js';
import { readStore, rekeyStore, resolveKeySource, StoreError, withStoreLock, writeStore } from '../secrets/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { readSecretValue } from './read-secret.js';

export const SECRET_USAGE = `usage: keyswap secret set NAME   (value from stdin, or a no-echo prompt)
       keyswap secret list       (names and update times, never values)
       keyswap secret rm NAME
       keyswap secret rekey      (new key; every entry re-encrypted; the old key decrypts nothing)
options: --config FILE (default ./keyswap.yaml)`;

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** `keyswap secret …`: manages the embedded encrypted store named by the config's `file` backend. */
export async function secretCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' } }, allowPositionals: true, strict: true });
  const [verb, name, ...rest] = positionals;
  if (verb === undefined || rest.length > 0) throw new CliError(`expected a verb\n${SECRET_USAGE}`, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  const spec: BackendSpec = config.backend;
  if (spec.type !== 'file') {
    throw new CliError(`${config.file}: backend.type is ${spec.type}; 'keyswap secret' manages the embedded store (backend type file). Store values with your ${spec.type} backend's own tools.`, EXIT.usage);
  }
  const needName = (): string => {
    if (name === undefined || !NAME.test(name)) throw new CliError(`'secret ${verb}' needs a NAME (letters, digits, '_' or '-', starting with a letter)`, EXIT.usage);
    return name;
  };
  try {
    const source = await resolveKeySource(spec, io.env);
    switch (verb) {
      case 'set': {
        const n = needName();
        const value = await readSecretValue(io, `value for ${n} (not echoed): `);
        if (value === '') throw new CliError('refusing an empty value', EXIT.usage);
        await withStoreLock(spec.path, async () => {
          const entries = await readStore(spec.path, source);
          entries.set(n, { value, updatedAt: new Date().toISOString() });
          await writeStore(spec.path, source, entries);
        });
        io.stdout.write(`stored ${n} in ${spec.path}\n`);
        if (!config.secrets.some((s) => s.name === n || (s.inject.render.kind === 'template' && s.inject.render.compose.includes(n)))) {
          io.stdout.write(`note: no secret in ${config.file} uses ${n} yet; add a binding for it there\n`);
        }
        return EXIT.ok;
      }
      case 'list': {
        const entries = await readStore(spec.path, source);
        if (entries.size === 0) io.stdout.write(`no secrets in ${spec.path}; add one with: keyswap secret set NAME\n`);
        for (const [n, e] of [...entries].sort(([a], [b]) => a.localeCompare(b))) io.stdout.write(`${n}\t${e.updatedAt}\n`);
        return EXIT.ok;
      }
      case 'rm': {
        const n = needName();
        const removed = await withStoreLock(spec.path, async () => {
          const entries = await readStore(spec.path, source);
          if (!entries.delete(n)) return false;
          await writeStore(spec.path, source, entries);
          return true;
        });
        if (!removed) throw new CliError(`${n} is not in ${spec.path} (see: keyswap secret list)`, EXIT.runtime);
        io.stdout.write(`removed ${n}\n`);
        return EXIT.ok;
      }
      case 'rekey': {
        const count = await rekeyStore(spec.path, source, (done, total) => io.stderr.write(`re-encrypted ${done}/${total}\n`));
        io.stdout.write(`rekeyed ${spec.path}: ${count} entries under a new key\n`);
        return EXIT.ok;
      }
      default:
        throw new CliError(`unknown verb '${verb}'\n${SECRET_USAGE}`, EXIT.usage);
    }
  } catch (err) {
    if (err instanceof StoreError) throw new CliError(err.message, EXIT.runtime);
    throw err;
  }
}
