import { readFile, stat } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable, SecretNotFound } from './errors.js';
import { Secret } from './secret.js';

/**
 * agent-vault-proxy's dev-only backend: a YAML file of `NAME: value`. Re-read on every fetch (it is for
 * development, and rotation must show). Refused when group- or world-readable.
 */
export class StaticBackend implements SecretsBackend {
  readonly type = 'static';
  readonly #path: string;

  private constructor(path: string) {
    this.#path = path;
  }

  static async open(path: string): Promise<StaticBackend> {
    let mode: number;
    try {
      mode = (await stat(path)).mode;
    } catch (err) {
      throw new BackendConfigError(`static backend: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if ((mode & 0o077) !== 0) throw new BackendConfigError(`static backend: ${path} is readable by group or others; run: chmod 600 ${path}`);
    const backend = new StaticBackend(path);
    await backend.#read();
    return backend;
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    const values = await this.#read();
    const value = values.get(name);
    if (value === undefined) throw new SecretNotFound(name);
    return new Secret(value);
  }

  async list(): Promise<readonly string[]> {
    return [...(await this.#read()).keys()];
  }

  async #read(): Promise<Map<string, string>> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      throw new BackendUnavailable('static', `cannot read the secrets file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const doc = parseDocument(text);
    // Parse errors name the line but never echo the file's content: it holds secrets.
    if (doc.errors.length > 0) throw new BackendConfigError(`static backend: ${this.#path}: not valid YAML (${doc.errors[0]?.code ?? 'error'} near line ${doc.errors[0]?.linePos?.[0]?.line ?? '?'})`);
    const data: unknown = doc.toJS();
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new BackendConfigError(`static backend: ${this.#path}: expected a mapping of NAME: value`);
    const out = new Map<string, string>();
    for (const [k, v] of Object.entries(data)) {
      if (typeof v !== 'string') throw new BackendConfigError(`static backend: ${this.#path}: value of ${k} must be a string`);
      out.set(k, v);
    }
    return out;
  }
}
