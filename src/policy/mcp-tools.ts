import { field, hasLookalikeKey, isObject, type JsonRpcBody, type JsonRpcMessage } from '../wire/jsonrpc.js';
import { bindingsFor, PLACEHOLDER_MARKER, type CompiledPolicy } from './compile.js';

/*
 * Bindings' `mcp: { tools }`: which tools of a remote MCP server may be called through keyswap. Pure functions of
 * the parsed body and the compiled policy; proxy/mcp-gate.ts reads the bytes and answers.
 */

/** One binding's list: its secret, and the tool names and globs it allows. */
export interface ToolRule {
  readonly secretName: string;
  /** As written in the config. */
  readonly tools: readonly string[];
  readonly allow: readonly RegExp[];
}

/** A `tools/call` found in a body: the tool it names (null when it names none readably), and whether it may go. */
export interface ToolCall {
  readonly id: unknown;
  readonly hasId: boolean;
  readonly tool: string | null;
  readonly allowed: boolean;
}

/** The fields of a JSON-RPC message: a key that only folds to one of them is read by some servers as that field. */
const MESSAGE_FIELDS = ['jsonrpc', 'id', 'method', 'params', 'result', 'error'];

const compiled = new WeakMap<readonly string[], readonly RegExp[]>();

/**
 * The tool rules of a destination: every binding at this host and port with `mcp:`, whatever its paths and
 * methods (a path the server routes to its MCP endpoint, and the binding does not name, must not step around them).
 * Empty: no tool policy here.
 */
export function mcpToolRules(policy: CompiledPolicy, host: string, port: number, scheme: 'https' | 'http'): ToolRule[] {
  if (!policy.hasMcpTools) return [];
  const out: ToolRule[] = [];
  for (const c of bindingsFor(policy, host, port, scheme)) {
    const tools = c.binding.mcp?.tools;
    if (tools === undefined) continue;
    let allow = compiled.get(tools);
    if (allow === undefined) {
      allow = tools.map(globToRegExp);
      compiled.set(tools, allow);
    }
    out.push({ secretName: c.secret.name, tools, allow });
  }
  return out;
}

/** A tool may be called when every rule at the destination allows it: two secrets' lists narrow each other. */
export function isToolAllowed(name: string, rules: readonly ToolRule[]): boolean {
  return rules.every((r) => r.allow.some((re) => re.test(name)));
}

/**
 * Every `tools/call` in the body, judged. A method that is `tools/call` but for its case or spaces is a call too
 * (and refused: no tool name is read from it); a call without a readable string name is refused.
 */
export function toolCalls(body: JsonRpcBody, rules: readonly ToolRule[]): ToolCall[] | 'unreadable' {
  const out: ToolCall[] = [];
  for (const m of body.messages) {
    // `Method`, `METHOD`, `paramſ`: a Go server reads them as `method` and `params` (the last one winning).
    if (hasLookalikeKey(m, MESSAGE_FIELDS)) return 'unreadable';
    if (!Object.hasOwn(m, 'method')) continue;
    const method = field(m, 'method');
    if (typeof method !== 'string') return 'unreadable';
    if (method.trim().toLowerCase() !== 'tools/call') continue;
    const params = field(m, 'params');
    // `Name` or `name\u0000` beside (or instead of) `name`: a call whose tool two servers could read apart.
    if (isObject(params) && hasLookalikeKey(params, ['name'])) return 'unreadable';
    const name = method === 'tools/call' && isObject(params) ? field(params, 'name') : undefined;
    const tool = typeof name === 'string' ? name : null;
    out.push({ id: field(m, 'id'), hasId: Object.hasOwn(m, 'id'), tool, allowed: tool !== null && isToolAllowed(tool, rules) });
  }
  return out;
}

/**
 * Hides the tools no rule allows from a `tools/list` answer (any JSON-RPC response whose result lists tools:
 * answers on a resumed stream cannot be matched to their request). Returns the message rewritten, or null when
 * it lists no tools. Hiding is a courtesy to the agent: the call check is what refuses.
 */
export function filterToolList(m: JsonRpcMessage, rules: readonly ToolRule[]): JsonRpcMessage | null {
  const result = field(m, 'result');
  if (!isObject(result)) return null;
  const tools = field(result, 'tools');
  if (!Array.isArray(tools)) return null;
  const kept = tools.filter((t) => isObject(t) && typeof field(t, 'name') === 'string' && isToolAllowed(field(t, 'name') as string, rules));
  return { ...m, result: { ...result, tools: kept } };
}

/** What the audit and the agent's error may say of a tool name the agent chose: the name, or a marker for one no server would give (or one holding a placeholder). */
export function printableTool(tool: string | null): string {
  // A name holding a placeholder is the agent's text, not a tool: the audit never carries a placeholder.
  return tool !== null && /^[A-Za-z0-9_\-./:]{1,128}$/.test(tool) && !tool.includes(PLACEHOLDER_MARKER) ? tool : '(not a tool name)';
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`, 's');
}
