import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import type { BackendSpec } from '../config/index.js';
import type { FetchContext, SecretsBackend } from './backend.js';
import { BackendConfigError } from './backend-config-error.js';
import { BackendUnavailable, SecretNotFound } from './errors.js';
import { Secret } from './secret.js';

type BwsSpec = Extract<BackendSpec, { type: 'bws' }>;
type Env = Readonly<Record<string, string | undefined>>;

/** The part of @bitwarden/sdk-napi keyswap uses; the package is optional and loaded only for this backend. */
interface SdkClient {
  auth(): { loginAccessToken(token: string, stateFile?: string): Promise<void> };
  secrets(): {
    list(organizationId: string): Promise<{ data: { id: string; key: string }[] }>;
    getByIds(ids: string[]): Promise<{ data: { id: string; key: string; value: string; note: string; projectId?: string | null }[] }>;
    update(organizationId: string, id: string, key: string, value: string, note: string, projectIds: string[]): Promise<unknown>;
  };
}
type SdkModule = { BitwardenClient: new (settings: Record<string, string>, logLevel: number) => SdkClient };

// The SDK's LogLevel is a const enum missing at run time; 4 is Error. Debug and Trace print the token.
const SDK_LOG_LEVEL_ERROR = 4;

/**
 * Bitwarden Secrets Manager through the official SDK. The SDK has no timeouts, so every call is raced against
 * one; it has no lookup by name, so a name → id map comes from `list` and is refreshed (one refresh at a time) on
 * a miss; names are not unique in BWS, so an ambiguous name is refused with the ids that share it. Errors carry
 * the HTTP status only, never the SDK's text, the token or a value.
 */
export class BwsBackend implements SecretsBackend {
  readonly type = 'bws';
  readonly #client: SdkClient;
  readonly #spec: BwsSpec;
  readonly #token: string;
  #login: Promise<void> | null = null;
  #ids = new Map<string, string[]>();
  #refresh: Promise<void> | null = null;

  private constructor(client: SdkClient, spec: BwsSpec, token: string) {
    this.#client = client;
    this.#spec = spec;
    this.#token = token;
  }

  /**
   * Loads the SDK and the token; does not log in (that happens on first use, so a BWS outage at start makes
   * requests fail closed instead of keeping keyswap down). The caller must have cleared HTTP(S)_PROXY from the
   * process environment: the SDK reads them, and keyswap must not route its own backend calls through itself.
   */
  static async open(spec: BwsSpec, env: Env, warn: (message: string) => void): Promise<BwsBackend> {
    let sdk: SdkModule;
    try {
      sdk = (await import('@bitwarden/sdk-napi')) as unknown as SdkModule;
    } catch {
      throw new BackendConfigError('bws backend: the optional package @bitwarden/sdk-napi is not installed (npm install @bitwarden/sdk-napi)');
    }
    const token = await readToken(spec, env, warn);
    const stateProblem = spec.stateFile ? await prepareStateFile(spec.stateFile) : null;
    if (stateProblem !== null) throw new BackendConfigError(`bws backend: ${stateProblem}`);
    const client = new sdk.BitwardenClient({ apiUrl: spec.apiUrl, identityUrl: spec.identityUrl, userAgent: 'keyswap', deviceType: 'SDK' }, SDK_LOG_LEVEL_ERROR);
    return new BwsBackend(client, spec, token);
  }

  async fetch(name: string, _ctx: FetchContext): Promise<Secret> {
    await this.#ensureLogin();
    let ids = this.#ids.get(name);
    if (ids === undefined) {
      await this.#refreshIds();
      ids = this.#ids.get(name);
    }
    if (ids === undefined) throw new SecretNotFound(name);
    if (ids.length > 1) throw new BackendUnavailable('bws', `secret name ${name} is ambiguous in the organization (ids ${ids.join(', ')}); rename all but one`);
    const id = ids[0] as string;
    const res = await this.#call('getByIds', () => this.#client.secrets().getByIds([id]));
    const found = res.data.find((s) => s.id === id);
    if (found === undefined) {
      this.#ids.delete(name); // deleted since the last list: the next miss re-lists
      throw new SecretNotFound(name);
    }
    return new Secret(found.value);
  }

  /**
   * Replaces the value of the one secret with this name (a rotated refresh token), keeping its note and project:
   * BWS's update takes every field, so the current ones are read first.
   */
  async store(name: string, value: Secret): Promise<void> {
    await this.#ensureLogin();
    if (!this.#ids.has(name)) await this.#refreshIds();
    const ids = this.#ids.get(name);
    if (ids === undefined) throw new SecretNotFound(name);
    if (ids.length > 1) throw new BackendUnavailable('bws', `secret name ${name} is ambiguous in the organization (ids ${ids.join(', ')}); rename all but one`);
    const id = ids[0] as string;
    const current = (await this.#call('getByIds', () => this.#client.secrets().getByIds([id]))).data.find((s) => s.id === id);
    if (current === undefined) throw new SecretNotFound(name);
    const projects = current.projectId ? [current.projectId] : [];
    await this.#call('update', () => this.#client.secrets().update(this.#spec.organizationId, id, name, value.reveal(), current.note, projects));
  }

  async list(): Promise<readonly string[]> {
    await this.#ensureLogin();
    await this.#refreshIds();
    return [...this.#ids.keys()];
  }

  #ensureLogin(): Promise<void> {
    const stateFile = this.#spec.stateFile;
    this.#login ??= (async () => {
      // Again before each login: a state file removed since open() would be recreated by the SDK with the umask.
      const stateProblem = stateFile ? await prepareStateFile(stateFile) : null;
      if (stateProblem !== null) throw new BackendUnavailable('bws', stateProblem);
      await this.#call('login', () => this.#client.auth().loginAccessToken(this.#token, stateFile ?? undefined));
    })().catch((err: unknown) => {
      this.#login = null;
      throw err;
    });
    return this.#login;
  }

  #refreshIds(): Promise<void> {
    this.#refresh ??= this.#call('list', () => this.#client.secrets().list(this.#spec.organizationId))
      .then((res) => {
        const ids = new Map<string, string[]>();
        for (const s of res.data) ids.set(s.key, [...(ids.get(s.key) ?? []), s.id]);
        this.#ids = ids;
      })
      .finally(() => {
        this.#refresh = null;
      });
    return this.#refresh;
  }

  /** Every SDK call: bounded by the timeout, and its failure reduced to the two errors callers know. */
  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendUnavailable('bws', `${what} got no answer within ${this.#spec.timeoutMs} ms`)), this.#spec.timeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof BackendUnavailable || err instanceof SecretNotFound) throw err;
      const status = /\[(\d{3})[^\]]*\]/.exec(err instanceof Error ? err.message : '')?.[1];
      if (status === '404') throw new SecretNotFound(`(bws ${what})`);
      throw new BackendUnavailable('bws', `${what} failed${status ? ` with HTTP ${status}` : ''}`, { cause: new Error('bws sdk error (message withheld)') });
    } finally {
      clearTimeout(timer);
    }
  }
}

async function readToken(spec: BwsSpec, env: Env, warn: (message: string) => void): Promise<string> {
  if (env.BWS_ACCESS_TOKEN) {
    if (spec.accessTokenFile) warn('bws backend: BWS_ACCESS_TOKEN is set and wins over access_token_file; an environment variable is visible to every process of this user, prefer the file');
    return env.BWS_ACCESS_TOKEN;
  }
  if (!spec.accessTokenFile) throw new BackendConfigError('bws backend: set backend.config.access_token_file (a 0600 file holding the access token) or BWS_ACCESS_TOKEN');
  const file = spec.accessTokenFile;
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (err) {
    throw new BackendConfigError(`bws backend: cannot read the access token file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if ((mode & 0o077) !== 0) throw new BackendConfigError(`bws backend: ${file} is readable by group or others; run: chmod 600 ${file}`);
  const token = (await readFile(file, 'utf8')).trim();
  if (!/^0\.[0-9a-f-]{36}\.[^:]+:[A-Za-z0-9+/=]+$/.test(token)) throw new BackendConfigError(`bws backend: ${file} does not hold a machine-account access token (0.<id>.<secret>:<key>)`);
  return token;
}

/**
 * The SDK caches its login token in the state file, which it opens with O_CREAT|O_TRUNC and mode 0666: a file it
 * creates takes the process umask (0644 under the usual 022) and holds a token others could read. So keyswap
 * creates the file first, 0600, and the SDK truncates and rewrites it in place, keeping that mode. An existing file
 * with group or other bits is narrowed to 0600; one that cannot be (another user's) is refused, never ignored.
 * Returns the problem, or null when the file is ready.
 */
async function prepareStateFile(file: string): Promise<string | null> {
  let fh;
  try {
    // No O_TRUNC: a token cached by an earlier run stays usable.
    fh = await open(file, constants.O_WRONLY | constants.O_CREAT, 0o600);
  } catch (err) {
    return `cannot create the state file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); keyswap's user must be able to write it`;
  }
  try {
    if (((await fh.stat()).mode & 0o077) !== 0) await fh.chmod(0o600);
    return null;
  } catch (err) {
    return `the state file ${file} is readable by group or others and cannot be made private (${(err as NodeJS.ErrnoException).code ?? 'error'}); run: chmod 600 ${file}`;
  } finally {
    await fh.close();
  }
}
