export { LocalCa, openCa, readCaConstraints, rotateCa, writeTrustBundle, type OpenCaOptions } from './local-ca.js';
export { describeConstraints, uncoveredHosts, type NameConstraints, type NameScope } from './name-constraints.js';
export { LeafCache } from './leaf-cache.js';
export { TlsStateError } from './errors.js';
export { Identity, IDENTITY_CREDENTIAL, IDENTITY_KEY_FILE, IDENTITY_PUBLIC_FILE, identityPublicOf, isIdentityPublicKey, newIdentityKey, verifyIdentity } from './identity.js';
export { CA_VALIDITY_DAYS, generateKeyPair as createLeafKey, fingerprintSha256 as caFingerprint, type KeyPair as LeafKey } from './certificates.js';
