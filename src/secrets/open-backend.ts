import type { BackendSpec, Config } from '../config/index.js';
import type { SecretsBackend } from './backend.js';
import { AwsSecretsBackend } from './aws-secrets-backend.js';
import { BwsBackend } from './bws-backend.js';
import { CredentialsBackend } from './credentials-backend.js';
import { EnvBackend } from './env-backend.js';
import { FileBackend } from './file-backend.js';
import { FilesBackend } from './files-backend.js';
import { RoutedBackend } from './routed-backend.js';
import { GcpSecretsBackend } from './gcp-secrets-backend.js';
import { OnePasswordBackend } from './onepassword-backend.js';
import { StaticBackend } from './static-backend.js';
import { VaultBackend } from './vault-backend.js';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Opens the default backend and every named one, routed as the config says. A backend that fails to open closes
 * the ones already opened, and the error names which backend it was.
 */
export async function openBackends(config: Pick<Config, 'backend' | 'backends' | 'backendOf' | 'locations'>, env: Env, warn: (message: string) => void = () => {}): Promise<RoutedBackend> {
  const fallback = await openBackend(config.backend, env, warn);
  const named = new Map<string, SecretsBackend>();
  try {
    for (const [name, spec] of config.backends) {
      try {
        named.set(name, await openBackend(spec, env, warn));
      } catch (err) {
        if (err instanceof Error) err.message = `backends.${name}: ${err.message}`;
        throw err;
      }
    }
  } catch (err) {
    await Promise.allSettled([fallback, ...named.values()].map((b) => b.close?.()));
    throw err;
  }
  return new RoutedBackend(fallback, named, config);
}

/** Builds one configured backend. `env` is the copy of the process environment that cli/ took at start. */
export async function openBackend(spec: BackendSpec, env: Env, warn: (message: string) => void = () => {}): Promise<SecretsBackend> {
  switch (spec.type) {
    case 'env':
      return new EnvBackend(env, spec.prefix);
    case 'static':
      return StaticBackend.open(spec.path);
    case 'file':
      return FileBackend.open(spec, env);
    case 'credentials':
      return CredentialsBackend.open(spec.directory, env);
    case 'files':
      return FilesBackend.open(spec.directory);
    case 'bws':
      return BwsBackend.open(spec, env, warn);
    case 'vault':
      return VaultBackend.open(spec, warn);
    case 'aws_secrets_manager':
      return AwsSecretsBackend.open(spec, env);
    case 'onepassword':
      return OnePasswordBackend.open(spec, warn);
    case 'gcp_secret_manager':
      return GcpSecretsBackend.open(spec);
  }
}
