import path from 'node:path';
import { DEFAULT_BACKEND } from './compile-secret.js';
import { compileVaultConnection, HTTPS_ONLY } from './compile-vault.js';
import { namesToFetch } from './fetched-names.js';
import { reportIssue, type Report } from './report.js';
import { backendSchemas, type RawBackend, type RawConfig } from './schema.js';
import type { BackendLocation, BackendSpec, KmsSettings, SecretSpec } from './types.js';
import type { FieldPath } from './yaml-source.js';

const BACKEND_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
/** Backends that read a secret at a path of their own and may hold JSON: `backend: { path, field }` means something to them. */
const LOCATING: ReadonlySet<BackendSpec['type']> = new Set<BackendSpec['type']>(['vault', 'aws_secrets_manager', 'onepassword', 'gcp_secret_manager']);

export interface CompiledBackends {
  readonly backend: BackendSpec;
  readonly backends: ReadonlyMap<string, BackendSpec>;
  readonly backendOf: ReadonlyMap<string, string>;
  readonly locations: ReadonlyMap<string, BackendLocation>;
}

/**
 * The default `backend:`, the named `backends:`, and which backend each fetched name comes from. A name two
 * secrets would fetch from different backends is an error: one name, one value, wherever keyswap reads it.
 */
export function compileBackends(raw: RawConfig, secrets: readonly SecretSpec[], stateDir: string, abs: (p: string) => string, err: Report): CompiledBackends | null {
  const backend = compileBackend(raw.backend ?? { type: 'file' }, ['backend'], stateDir, abs, err);
  const backends = new Map<string, BackendSpec>();
  for (const [name, entry] of Object.entries(raw.backends ?? {})) {
    if (!BACKEND_NAME.test(name) || name === DEFAULT_BACKEND) {
      err(['backends', name], name === DEFAULT_BACKEND ? `'${DEFAULT_BACKEND}' names the unnamed backend: (the default); give this one another name` : `backend name '${name}' must be lower-case letters, digits, '-' or '_', starting with a letter`, true);
      continue;
    }
    const spec = compileBackend(entry, ['backends', name], stateDir, abs, err);
    if (spec !== null) backends.set(name, spec);
  }
  const backendOf = new Map<string, string>();
  const routedBy = new Map<string, string>();
  const locations = new Map<string, BackendLocation>();
  for (const s of secrets) {
    const p: FieldPath = ['secrets', s.name, 'backend'];
    const target = s.backend ?? DEFAULT_BACKEND;
    const spec = s.backend === null ? backend : backends.get(s.backend);
    if (spec === undefined) {
      err(p, `'${s.backend}' is not a backend in this file (named under backends: ${[...backends.keys()].join(', ') || 'none'}; '${DEFAULT_BACKEND}' is the unnamed backend:)`);
      continue;
    }
    for (const name of namesToFetch(s)) {
      const other = routedBy.get(name);
      if (other !== undefined && (backendOf.get(name) ?? DEFAULT_BACKEND) !== target) {
        err(p, `${name} is fetched by secrets ${other} and ${s.name} from different backends (${backendOf.get(name) ?? DEFAULT_BACKEND} and ${target}); a name has one value: read it from one backend`);
        continue;
      }
      routedBy.set(name, other ?? s.name);
      if (s.backend !== null) backendOf.set(name, s.backend);
    }
    const location = s.location;
    if (location === null) continue;
    if (!namesToFetch(s).includes(s.name)) {
      err(p, `path and field say where ${s.name}'s own value is, but ${s.name} fetches ${namesToFetch(s).join(', ')} instead (compose or a credential's inputs): give those their own secrets, or leave path and field out`);
      continue;
    }
    if (spec !== null && !LOCATING.has(spec.type)) {
      err(p, `the ${spec.type} backend reads a secret by its name; path and field are for ${[...LOCATING].join(', ') || 'backends with paths'}`);
      continue;
    }
    locations.set(s.name, location);
  }
  if (backend === null) return null;
  return { backend, backends, backendOf, locations };
}

/** The spec of the backend a secret reads from. */
export function backendOfSecret(config: Pick<CompiledBackends, 'backend' | 'backends'>, secret: SecretSpec): BackendSpec | undefined {
  return secret.backend === null ? config.backend : config.backends.get(secret.backend);
}

function compileBackend(entry: Partial<RawBackend>, at: FieldPath, stateDir: string, abs: (p: string) => string, err: Report): BackendSpec | null {
  const type = entry.type ?? 'file';
  const cfg = entry.config ?? {};
  const p: FieldPath = [...at, 'config'];
  const where = at.join('.');
  if (typeof cfg.type === 'string' && cfg.type !== type) {
    err([...p, 'type'], `'${cfg.type}' disagrees with ${where}.type '${type}'`);
    return null;
  }
  const parsed = backendSchemas[type].safeParse(cfg);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportIssue({ ...issue, path: [...p, ...issue.path] }, err, nest(at, { config: cfg }));
    return null;
  }
  const c = parsed.data as Record<string, unknown>;
  const str = (k: string): string | null => (typeof c[k] === 'string' ? (c[k] as string) : null);
  switch (type) {
    case 'env':
      return { type, prefix: str('prefix') ?? 'KEYSWAP_SECRET_' };
    case 'static':
      return { type, path: abs(str('path') ?? '') };
    case 'file': {
      const sources = ['key_file', 'passphrase_file', 'key_kms'].filter((k) => str(k) !== null);
      if (sources.length > 1) {
        err([...p, sources[1] as string], `${sources.join(' and ')} are exclusive; keep one`);
        return null;
      }
      const keyFile = str('key_file');
      const passphraseFile = str('passphrase_file');
      const kms = compileKms(c.kms as RawKms | undefined, str('key_kms'), [...p, 'kms'], abs, err);
      if (kms === null) return null;
      return { type, path: abs(str('path') ?? path.join(stateDir, 'secrets.enc')), keyFile: keyFile ? abs(keyFile) : null, passphraseFile: passphraseFile ? abs(passphraseFile) : null, keyKms: str('key_kms'), kms };
    }
    case 'credentials':
      return { type, directory: str('directory') ? abs(str('directory') as string) : null };
    case 'files':
      return { type, directory: abs(str('directory') ?? '') };
    case 'vault': {
      const conn = compileVaultConnection(c as unknown as Parameters<typeof compileVaultConnection>[0], p, abs, err);
      if (conn === null) return null;
      const mount = (str('mount') ?? 'secret').replace(/^\/+|\/+$/g, '');
      return { type, mount, prefix: str('prefix') ?? '', field: str('field') ?? 'value', ...conn };
    }
    case 'aws_secrets_manager':
      if (str('endpoint') !== null && !(str('endpoint') as string).startsWith('https://')) {
        err([...p, 'endpoint'], `'${str('endpoint')}' ${HTTPS_ONLY}`);
        return null;
      }
      return {
        type,
        region: str('region'),
        endpoint: str('endpoint'),
        prefix: str('prefix') ?? '',
        field: str('field'),
        caFile: str('ca_file') ? abs(str('ca_file') as string) : null,
        timeoutMs: (typeof c.timeout_seconds === 'number' ? c.timeout_seconds : 10) * 1000,
      };
    case 'onepassword': {
      const url = new URL(str('url') as string);
      if (url.protocol !== 'https:') {
        err([...p, 'url'], `'${str('url')}' ${HTTPS_ONLY}`);
        return null;
      }
      return {
        type,
        url: url.origin + '/',
        tokenFile: abs(str('token_file') as string),
        vault: str('vault') as string,
        field: str('field'),
        caFile: str('ca_file') ? abs(str('ca_file') as string) : null,
        timeoutMs: (typeof c.timeout_seconds === 'number' ? c.timeout_seconds : 10) * 1000,
      };
    }
    case 'gcp_secret_manager': {
      const endpoint = str('endpoint');
      if (endpoint !== null && !endpoint.startsWith('https://')) {
        err([...p, 'endpoint'], `'${endpoint}' ${HTTPS_ONLY}`);
        return null;
      }
      if (str('project') === null) {
        err([...p, 'project'], 'is required (the Google Cloud project that holds the secrets)', true);
        return null;
      }
      return {
        type,
        project: str('project') as string,
        prefix: str('prefix') ?? '',
        version: str('version') ?? 'latest',
        field: str('field'),
        endpoint,
        timeoutMs: (typeof c.timeout_seconds === 'number' ? c.timeout_seconds : 10) * 1000,
      };
    }
    case 'bws': {
      const token = str('access_token_file') ?? str('access_token_path');
      const state = str('state_file') ?? str('state_path');
      return {
        type,
        organizationId: str('organization_id') ?? '',
        accessTokenFile: token ? abs(token) : null,
        stateFile: state ? abs(state) : null,
        apiUrl: str('api_url') ?? 'https://api.bitwarden.com',
        identityUrl: str('identity_url') ?? 'https://identity.bitwarden.com',
        timeoutMs: (typeof c.timeout_seconds === 'number' ? c.timeout_seconds : 10) * 1000,
      };
    }
  }
}

type RawKms = { endpoint?: string; ca_file?: string; timeout_seconds?: number; address?: string; namespace?: string; mount?: string; auth?: Record<string, string> };

/**
 * `kms:`: AWS KMS's endpoint and CA, or the Vault holding a transit key (address and auth as the vault backend's).
 * `key_kms` is checked against it: a transit key needs a Vault; gcp_kms is not built yet and says so.
 */
function compileKms(raw: RawKms | undefined, uri: string | null, p: FieldPath, abs: (f: string) => string, err: Report): KmsSettings | null {
  const keyPath: FieldPath = [...p.slice(0, -1), 'key_kms'];
  let vault: KmsSettings['vault'] = null;
  if (raw?.address !== undefined || raw?.auth !== undefined) {
    if (raw.address === undefined || raw.auth === undefined) {
      err([...p, raw.address === undefined ? 'address' : 'auth'], 'is required for a Vault transit key (kms.address and kms.auth, as the vault backend takes them)', true);
      return null;
    }
    const method = raw.auth.method;
    if (method !== 'token' && method !== 'approle' && method !== 'kubernetes') {
      err([...p, 'auth', 'method'], 'must be one of: token, approle, kubernetes');
      return null;
    }
    const conn = compileVaultConnection({ address: raw.address, namespace: raw.namespace, ca_file: raw.ca_file, timeout_seconds: raw.timeout_seconds, auth: { ...raw.auth, method } }, p, abs, err);
    if (conn === null) return null;
    vault = { ...conn, mount: (raw.mount ?? 'transit').replace(/^\/+|\/+$/g, '') };
  }
  if (uri?.startsWith('vault_transit://') && vault === null) {
    err(keyPath, `${uri} needs the Vault that holds it: set kms: { address, auth } beside it`);
    return null;
  }
  if (raw?.endpoint !== undefined && !raw.endpoint.startsWith('https://')) {
    err([...p, 'endpoint'], `'${raw.endpoint}' ${HTTPS_ONLY}`);
    return null;
  }
  return { endpoint: raw?.endpoint ?? null, caFile: raw?.ca_file === undefined ? null : abs(raw.ca_file), timeoutMs: (raw?.timeout_seconds ?? 10) * 1000, vault };
}

/** The raw document shape reportIssue reads a zod path against: `{ backend: … }` or `{ backends: { NAME: … } }`. */
function nest(at: FieldPath, value: unknown): unknown {
  return [...at].reverse().reduce((inner, key) => ({ [key]: inner }), value);
}
