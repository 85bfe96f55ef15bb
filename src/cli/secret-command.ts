import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { namesToFetch, loadConfig, type BackendSpec } from '../config/index.js';
import { openKmsKeySource, readPassphraseFile, readStore, rekeyStore, resolveKeySource, StoreError, updateStore, type KeySource } from '../secrets/index.js';
import { CliError, EXIT } from './exit-codes.js';
import { count, type CliIo } from './io.js';
import { readSecretValue } from './read-secret.js';

export const SECRET_USAGE = `usage: keyswap secret set NAME   (value from stdin, or a no-echo prompt)
       keyswap secret list       (names and update times, never values)
       keyswap secret rm NAME
       keyswap secret rekey [--new-passphrase-file FILE]
           every entry re-encrypted under new key material: a key-file store gets a new random key file; a
           passphrase store needs the new passphrase (FILE, 0600), which then replaces the configured passphrase
           file. The old key or passphrase opens nothing written afterwards; copies made before still open with it.
       keyswap secret rekey --to-kms URI      move the store onto a KMS-wrapped key (aws_kms://ARN, vault_transit://KEY,
                                              reached as backend.config.kms says); then set key_kms: URI
       keyswap secret rekey --to-key-file FILE move it back under a new key file (made 0600; must not exist); then set key_file
options: --config FILE (default ./keyswap.yaml)
         --backend NAME  list or rekey the file store named NAME under backends: (set and rm go to the store
                         the config reads NAME from)`;

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** What a rekey did, and the config change a move needs before keyswap can open the store again. */
function rekeyedMessage(store: string, done: number, source: KeySource, next: KeySource | null, label: string): string {
  const entries = count(done, 'entry', 'entries');
  if (next?.kind === 'kms') return `moved ${store}: ${entries} now under a key wrapped by ${next.uri}; only its wrapped form is on disk. Now set ${label}.config.key_kms: ${next.uri} (and remove key_file / passphrase_file) before keyswap starts again`;
  if (next?.kind === 'keyfile') return `moved ${store}: ${entries} now under the key file ${next.path}. Now set ${label}.config.key_file: ${next.path} (and remove key_kms) before keyswap starts again`;
  if (source.kind === 'kms') return `rekeyed ${store}: ${entries} under a new key wrapped by ${source.uri}; the old wrapped key opens nothing written from now on`;
  const where = source.kind === 'keyfile' ? `a new key in ${source.path}` : source.file !== undefined ? `the new passphrase, now in ${source.file}` : 'the new passphrase';
  return `rekeyed ${store}: ${entries} under ${where}; the old ${source.kind === 'keyfile' ? 'key' : 'passphrase'} opens nothing written from now on`;
}

/** `keyswap secret …`: manages the embedded encrypted store named by the config's `file` backend. */
export async function secretCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, backend: { type: 'string' }, 'new-passphrase-file': { type: 'string' }, 'to-kms': { type: 'string' }, 'to-key-file': { type: 'string' } }, allowPositionals: true, strict: true });
  const [verb, name, ...rest] = positionals;
  if (verb === undefined) throw new CliError(`expected a verb\n${SECRET_USAGE}`, EXIT.usage);
  if (verb === 'set' && rest.length > 0) {
    throw new CliError(`refusing a value on the command line: any user can read it in /proc/<pid>/cmdline, and it stays in your shell history; pipe it on stdin or type it at the prompt`, EXIT.usage);
  }
  if (rest.length > 0) throw new CliError(`'secret ${verb}' takes ${verb === 'list' || verb === 'rekey' ? 'no NAME' : 'one NAME'}; got extra: ${rest.join(' ')}\n${SECRET_USAGE}`, EXIT.usage);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  // A name goes to the store it is read from; list and rekey take --backend for a named store.
  const routed = (verb === 'set' || verb === 'rm') && name !== undefined ? config.backendOf.get(name) : values.backend;
  const spec: BackendSpec | undefined = routed === undefined ? config.backend : config.backends.get(routed);
  const label = routed === undefined ? 'backend' : `backends.${routed}`;
  if (spec === undefined) throw new CliError(`${config.file}: no backend named ${routed} under backends: (${[...config.backends.keys()].join(', ') || 'none'})`, EXIT.usage);
  if (spec.type !== 'file') {
    const whose = routed !== undefined && values.backend === undefined ? `${name} is read from ${label}, whose ` : '';
    throw new CliError(`${config.file}: ${whose}${label}.type is ${spec.type}; 'keyswap secret' manages the embedded store (backend type file). Store values with your ${spec.type} backend's own tools.`, EXIT.usage);
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
        if (value.trim() === '') throw new CliError('refusing a value that is only whitespace', EXIT.usage);
        if (/[\r\n]/.test(value)) throw new CliError('refusing a value with a line break (CR or LF) inside: no HTTP header can carry it, and it usually means more than one line was piped in; store one value per secret', EXIT.usage);
        const dir = path.dirname(spec.path);
        if (!existsSync(dir)) {
          // The first secret of a hand-written config: its state directory is keyswap's, private from the start.
          await mkdir(dir, { recursive: true, mode: 0o700 });
          io.stdout.write(`created ${dir} (700) for the store\n`);
        }
        await updateStore(spec.path, source, (entries) => {
          entries.set(n, { value, updatedAt: new Date().toISOString() });
          return true;
        });
        io.stdout.write(`stored ${n} in ${spec.path}; a running keyswap uses it within cache.ttl_seconds (${config.cache.ttlSeconds} s), or at once after: keyswap reload\n`);
        if (!config.secrets.some((s) => s.name === n || namesToFetch(s).includes(n))) {
          io.stdout.write(`note: no secret in ${config.file} uses ${n} yet; add a binding for it there\n`);
        }
        return EXIT.ok;
      }
      case 'list': {
        const { entries } = await readStore(spec.path, source);
        if (entries.size === 0) io.stdout.write(`no secrets in ${spec.path}; add one with: keyswap secret set NAME\n`);
        for (const [n, e] of [...entries].sort(([a], [b]) => a.localeCompare(b))) io.stdout.write(`${n}\t${e.updatedAt}\n`);
        return EXIT.ok;
      }
      case 'rm': {
        const n = needName();
        const removed = await updateStore(spec.path, source, (entries) => entries.delete(n));
        if (!removed) throw new CliError(`${n} is not in ${spec.path} (see: keyswap secret list)`, EXIT.runtime);
        io.stdout.write(`removed ${n}; a running keyswap stops using it within cache.ttl_seconds (${config.cache.ttlSeconds} s), or at once after: keyswap reload\n`);
        return EXIT.ok;
      }
      case 'rekey': {
        const newFile = values['new-passphrase-file'];
        const toKms = values['to-kms'];
        const toKeyFile = values['to-key-file'];
        if ([newFile, toKms, toKeyFile].filter((v) => v !== undefined).length > 1) throw new CliError('--new-passphrase-file, --to-kms and --to-key-file are exclusive', EXIT.usage);
        if (newFile !== undefined && source.kind !== 'passphrase') throw new CliError(`${spec.path} is protected by ${source.kind === 'kms' ? source.uri : 'a key file'}, not a passphrase; rekey it without --new-passphrase-file`, EXIT.usage);
        // A key file that exists could be an old key a backup or a copy still holds: the store moves under a new one only.
        if (toKeyFile !== undefined && existsSync(path.resolve(io.cwd, toKeyFile))) throw new CliError(`--to-key-file ${toKeyFile} exists; name a new file (keyswap makes a fresh key there, 0600), so no copy of an older key opens the store`, EXIT.usage);
        if (toKms !== undefined && source.kind === 'kms' && source.uri === toKms) throw new CliError(`${spec.path} is already wrapped by ${toKms}; to replace its key, run keyswap secret rekey without --to-kms`, EXIT.usage);
        const next = newFile !== undefined ? await readPassphraseFile(path.resolve(io.cwd, newFile))
          : toKms !== undefined ? await openKmsKeySource(toKms, spec.kms, io.env)
            : toKeyFile !== undefined ? { kind: 'keyfile' as const, path: path.resolve(io.cwd, toKeyFile) } : null;
        try {
          const done = await rekeyStore(spec.path, source, next, (done, total) => io.stderr.write(`re-encrypted ${done}/${total}\n`));
          io.stdout.write(`${rekeyedMessage(spec.path, done, source, next, label)}\n`);
        } finally {
          if (next?.kind === 'kms') await next.close();
          if (source.kind === 'kms') await source.close();
        }
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
