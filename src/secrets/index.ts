export { Secret } from './secret.js';
export { SecretNotFound, BackendUnavailable } from './errors.js';
export { BackendConfigError } from './backend-config-error.js';
export type { SecretsBackend, FetchContext } from './backend.js';
export { SecretCache, type SecretCacheOptions } from './cache.js';
export { openBackend, type Env } from './open-backend.js';
export { FileBackend, readPassphraseFile, resolveKeySource } from './file-backend.js';
export { readStore, updateStore, rekeyStore, StoreError, type KeySource, type StoredEntry, type StoreContents } from './file-store.js';
export { CredentialsBackend } from './credentials-backend.js';
