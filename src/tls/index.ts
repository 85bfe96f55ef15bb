export { LocalCa, openCa, rotateCa, writeTrustBundle } from './local-ca.js';
export { LeafCache } from './leaf-cache.js';
export { TlsStateError } from './errors.js';
export { generateKeyPair as createLeafKey, fingerprintSha256 as caFingerprint, type KeyPair as LeafKey } from './certificates.js';
