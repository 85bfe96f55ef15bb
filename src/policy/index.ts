export { decide } from './decide.js';
export { compilePolicy, bindingsFor, isBoundDestination, PLACEHOLDER_MARKER, type CompiledPolicy, type CompiledBinding } from './compile.js';
export { parseAuthority, isIpLiteral, type Authority } from './host.js';
export { decodeBasic, queryPairs, scanPlaceholders, type Sighting } from './scan.js';
export { isAmbiguousPath } from './path-glob.js';
export type { RequestFacts, Verdict, Injection, Declined, DeclineReason, DenyReason, SiteKey } from './verdict.js';
