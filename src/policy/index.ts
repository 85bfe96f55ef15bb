export { decide } from './decide.js';
export { decryptedHosts, type DecryptedHosts } from './decrypted-hosts.js';
export { compilePolicy, bindingsFor, isBoundDestination, leafNameFor, PLACEHOLDER_MARKER, type CompiledPolicy, type CompiledBinding } from './compile.js';
export { scanPlaceholders, type Sighting } from './scan.js';
export type { RequestFacts, Verdict, Injection, Declined, DeclineReason, DenyReason, SiteKey } from './verdict.js';
