import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { compileConfig } from './compile-config.js';
import { ConfigError, ConfigErrors } from './errors.js';
import type { Config } from './types.js';
import { parseYaml } from './yaml-source.js';

/** Reads and validates a config file. Throws ConfigErrors (every problem, each naming file:line: field). */
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
  return parseConfig(text, abs);
}

/** The same from text; `file` names the source in errors and anchors relative paths. */
export function parseConfig(text: string, file: string): Config {
  try {
    return compileConfig(parseYaml(text, path.resolve(file)));
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigErrors([err]);
    throw err;
  }
}
