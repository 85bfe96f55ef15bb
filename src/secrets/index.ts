export { Secret } from './secret.js';
export { SecretNotFound, BackendUnavailable } from './errors.js';
export { BackendConfigError } from './backend-config-error.js';
export type { SecretsBackend, FetchContext } from './backend.js';
export { SecretCache, type SecretCacheOptions } from './cache.js';
export { openBackend, type Env } from './open-backend.js';
export { EnvBackend } from './env-backend.js';
export { StaticBackend } from './static-backend.js';
