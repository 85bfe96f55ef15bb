export { decide } from './decide.js';
export { decryptedHosts, type DecryptedHosts } from './decrypted-hosts.js';
export { compilePolicy, isBoundDestination, leafNameFor, PLACEHOLDER_MARKER, type CompiledPolicy } from './compile.js';
export type { RequestFacts, Verdict, Injection, Declined, DeclineReason, DenyReason, SiteKey } from './verdict.js';
