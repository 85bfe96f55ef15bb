import path from 'node:path';
import { DEFAULT_BACKEND } from './compile-secret.js';
import { compileVaultConnection, httpsOrLoopback } from './compile-vault.js';
import { namesToFetch } from './fetched-names.js';
import { reportIssue, type Report } from './report.js';
import { backendSchemas, type RawBackend, type RawConfig } from './schema.js';
import type { BackendLocation, BackendSpec, SecretSpec } from './types.js';
import type { FieldPath } from './yaml-source.js';

const BACKEND_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
/** Backends that read a secret at a path of their own and may hold JSON: `backend: { path, field }` means something to them. */
const LOCATING: ReadonlySet<BackendSpec['type']> = new Set<BackendSpec['type']>(['vault', 'aws_secrets_manager', 'onepassword']);

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
      if (str('key_file') && str('passphrase_file')) {
        err([...p, 'passphrase_file'], 'key_file and passphrase_file are exclusive; keep one');
        return null;
      }
      const keyFile = str('key_file');
      const passphraseFile = str('passphrase_file');
      return { type, path: abs(str('path') ?? path.join(stateDir, 'secrets.enc')), keyFile: keyFile ? abs(keyFile) : null, passphraseFile: passphraseFile ? abs(passphraseFile) : null };
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
      if (!httpsOrLoopback(url)) {
        err([...p, 'url'], `'${str('url')}' must be https:// (plain http only to a loopback address, such as a Connect server beside keyswap)`);
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

/** The raw document shape reportIssue reads a zod path against: `{ backend: … }` or `{ backends: { NAME: … } }`. */
function nest(at: FieldPath, value: unknown): unknown {
  return [...at].reverse().reduce((inner, key) => ({ [key]: inner }), value);
}
