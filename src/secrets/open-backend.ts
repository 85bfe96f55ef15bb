import type { BackendSpec } from '../config/index.js';
import type { SecretsBackend } from './backend.js';
import { BwsBackend } from './bws-backend.js';
import { CredentialsBackend } from './credentials-backend.js';
import { EnvBackend } from './env-backend.js';
import { FileBackend } from './file-backend.js';
import { FilesBackend } from './files-backend.js';
import { StaticBackend } from './static-backend.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Builds the configured backend. `env` is the copy of the process environment that cli/ took at start. */
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
  }
}
