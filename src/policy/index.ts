export { decide } from './decide.js';
export { decryptedHosts, type DecryptedHosts } from './decrypted-hosts.js';
export { namedResources, RESOURCE_HEADERS, type NamedResource } from './named-resources.js';
export { compilePolicy, isBoundDestination, leafNameFor, PLACEHOLDER_MARKER, type CompiledPolicy } from './compile.js';
export type { RequestFacts, Verdict, Injection, Declined, DeclineReason, DenyReason, SiteKey } from './verdict.js';
export { mcpToolRules, toolCalls, filterToolList, isToolAllowed, printableTool, type ToolRule, type ToolCall } from './mcp-tools.js';
