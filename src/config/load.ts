import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { compileConfig } from './compile-config.js';
import { ConfigError, ConfigErrors, LooseWriteAccessError } from './errors.js';
import type { Config } from './types.js';
import { looseWriteAccess } from './write-access.js';
import { fieldName, parseYaml, type YamlSource } from './yaml-source.js';

/**
 * Reads and validates a config file. Throws ConfigErrors (every problem, each naming file:line: field), including
 * a LooseWriteAccessError for the config or its `extra_ca_file` when someone other than the owner could write it:
 * whoever can write the config can add bindings, `upstream.resolve` entries or a CA, and so send secrets anywhere.
 * Every command that reads a config comes through here.
 */
export async function loadConfig(file: string): Promise<Config> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file (create one with: keyswap init, or copy bindings.example.yaml)' : `cannot be read (${code ?? 'error'})`;
    throw new ConfigErrors([new ConfigError(abs, 1, '(file)', why)]);
  }
  const loose = await looseWriteAccess(abs);
  const errors = loose === null ? [] : [new LooseWriteAccessError(abs, 1, '(file)', `${loose.finding}: whoever can change it can add bindings, upstream.resolve entries or an extra_ca_file`, loose.fix)];
  let src: YamlSource;
  let config: Config;
  try {
    src = parseYaml(text, abs);
    config = compileConfig(src);
  } catch (err) {
    // All problems at once: a loose mode and a typo are fixed in one go.
    if (err instanceof ConfigError) throw new ConfigErrors([...errors, err]);
    if (err instanceof ConfigErrors) throw new ConfigErrors([...errors, ...err.errors]);
    throw err;
  }
  const caFile = config.upstream.extraCaFile;
  const caLoose = caFile === null ? null : await looseWriteAccess(caFile);
  if (caLoose !== null) {
    const field = ['upstream', 'extra_ca_file'];
    errors.push(new LooseWriteAccessError(abs, src.lineOf(field), fieldName(field), `${caFile} is ${caLoose.finding}: whoever can change it chooses which upstream certificates keyswap trusts`, caLoose.fix));
  }
  // The TLS listener's files decide who every certificate client is: nobody else may change them.
  for (const [key, file] of config.listenTls === null ? [] : [['cert_file', config.listenTls.certFile], ['key_file', config.listenTls.keyFile], ['client_ca_file', config.listenTls.clientCaFile]] as const) {
    const l = await looseWriteAccess(file);
    const field = ['listen_tls', key];
    if (l !== null) errors.push(new LooseWriteAccessError(abs, src.lineOf(field), fieldName(field), `${file} is ${l.finding}: whoever can change it decides which agents' certificates keyswap accepts`, l.fix));
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return config;
}

/** The same from text; `file` names the source in errors and anchors relative paths. No file is checked. */
export function parseConfig(text: string, file: string): Config {
  try {
    return compileConfig(parseYaml(text, path.resolve(file)));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigErrors([err]);
    throw err;
  }
}
