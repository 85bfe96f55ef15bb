import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { Transform, type TransformCallback } from 'node:stream';
import { mcpToolRules, filterToolList, printableTool, toolCalls, type ToolCall, type ToolRule } from '../policy/index.js';
import { eventData, isObject, mediaType, readJsonRpcBody, UnreadableJson, sseEvents, withData, type Framing, type JsonRpcBody } from '../wire/index.js';
import type { Exchange, ExchangeEvent, Target } from './exchange.js';
import { Refusal } from './refusal.js';
import type { Snapshot } from './snapshot.js';

/*
 * A binding's `mcp: { tools }` on the request path: the body of every request to that MCP server is read whole
 * (bounded) and its JSON-RPC judged before anything is sent; a call to a tool no rule allows is answered with a
 * JSON-RPC error and nothing goes upstream. Answers listing tools (JSON, or events on an SSE stream) have the
 * refused ones taken out. The reading is wire/jsonrpc.ts's, the judgement policy/mcp-tools.ts's.
 */

/** A request body under a tool policy may be at most this long: it is held in memory to be read. */
export const MAX_MCP_BODY = 4 * 1024 * 1024;
/** An answer listing tools is read whole too: an event or a JSON body past this breaks the response. */
const MAX_MCP_ANSWER = 16 * 1024 * 1024;
/**
 * Bytes held at once, in all, against a cap: each holder sets what it holds now (its share), and gives it back
 * when done. Past the cap a holder's growth is refused, never buffered.
 */
class MemoryBudget {
  #held = 0;
  constructor(readonly max: number) {}

  share(): { set(bytes: number): boolean; release(): void } {
    let counted = 0;
    const set = (bytes: number): boolean => {
      if (bytes > counted && this.#held + (bytes - counted) > this.max) return false;
      this.#held += bytes - counted;
      counted = bytes;
      return true;
    };
    return { set, release: () => { set(0); } };
  }
}

/**
 * Every body under a tool policy held at once, from its first byte until its request has gone upstream or been
 * refused (a wait for approval included): past it a request is refused (503). Without it an agent held 4 MiB per
 * request for upload_max_seconds, 100 requests per HTTP/2 connection, on as many connections as it liked.
 */
const bodies = new MemoryBudget(64 * 1024 * 1024);
/**
 * Every answer under a tool policy held at once (a JSON body read whole, an SSE event being assembled, and what
 * either has handed on that the agent has not read yet): past it an answer is broken. Without it an agent that read
 * none of its answers made keyswap hold every one whole (60 answers of 12 MiB on two HTTP/2 connections: 1.5 GiB),
 * while without a tool policy they wait upstream in flow control.
 */
const answers = new MemoryBudget(64 * 1024 * 1024);

/** One answer's share of the answers' budget, held by its transform: given back once it ends or closes. */
function answerHold(t: Transform): (bytes: number) => boolean {
  const share = answers.share();
  t.once('end', share.release);
  t.once('close', share.release);
  return share.set;
}
/** JSON-RPC's range for a server's own errors (-32000 to -32099). */
const TOOL_REFUSED = -32001;

/** The request under a tool policy: its body as read (sent on in place of the agent's stream), and its calls. */
export interface GuardedBody {
  readonly bytes: Buffer;
  /** Gives its bytes back to the budget: once the request has gone upstream or been refused. Idempotent. */
  release(): void;
  readonly body: JsonRpcBody;
  /** The allowed calls' records, made durable with the request's decisions before it goes. */
  readonly events: readonly ExchangeEvent[];
}

/**
 * The tool policy at this request's destination, applied: null when there is none (or no body to read). Throws a
 * Refusal: the body cannot be read (400), is too long (413), or calls a tool no rule allows (a JSON-RPC error).
 */
export async function guardToolCalls(ex: Exchange, target: Target, req: IncomingMessage | Http2ServerRequest, framing: Framing, headers: readonly (readonly [string, string])[], isWebSocket: boolean, snap: Snapshot = ex.snap): Promise<GuardedBody | null> {
  const rules = mcpToolRules(snap.policy, target.host, target.port, target.scheme);
  if (rules.length === 0) return null;
  // A WebSocket's messages are not read as JSON-RPC: under a tool policy there is no such way in.
  if (isWebSocket) throw new Refusal('mcp_body_unreadable');
  if (framing.kind === 'none') return null;
  const { bytes, release } = await readBody(req, framing, snap.config.timeouts);
  let body: JsonRpcBody;
  try {
    const one = (name: string): string | undefined => {
      const found = headers.filter(([n]) => n === name);
      if (found.length > 1) throw new UnreadableJson(`${name} twice`);
      return found[0]?.[1];
    };
    body = readJsonRpcBody(bytes, one('content-type'), one('content-encoding'));
  } catch (err) {
    release();
    if (err instanceof UnreadableJson) throw new Refusal('mcp_body_unreadable', { cause: err });
    throw err;
  }
  let calls: ToolCall[];
  try {
    calls = judge(ex, body, rules);
  } catch (err) {
    release();
    throw err;
  }
  // One record per tool, not per call: a batch of thousands of calls is not thousands of durable records.
  return { bytes, release, body, events: [...new Set(calls.map((c) => printableTool(c.tool)))].map((tool): ExchangeEvent => ({ type: 'mcp_tool_call', tool, decision: 'allowed' })) };
}

/**
 * The same body judged again under the configuration in force after a wait (approval, a queue, minting): a reload
 * that narrowed the tools refuses what it no longer allows.
 */
export function guardStillHolds(ex: Exchange, target: Target, guarded: GuardedBody | null): void {
  const now = ex.current();
  if (guarded === null || now === ex.snap) return;
  const rules = mcpToolRules(now.policy, target.host, target.port, target.scheme);
  if (rules.length > 0) judge(ex, guarded.body, rules);
}

function judge(ex: Exchange, body: JsonRpcBody, rules: readonly ToolRule[]): ToolCall[] {
  const calls = toolCalls(body, rules);
  if (calls === 'unreadable') throw new Refusal('mcp_body_unreadable');
  const denied = calls.filter((c) => !c.allowed);
  if (denied.length === 0) return calls;
  for (const tool of new Set(denied.map((c) => printableTool(c.tool)))) ex.note({ type: 'mcp_tool_call', tool, decision: 'denied' });
  throw new Refusal('mcp_tool_denied', { answer: jsonRpcRefusal(body, calls) });
}

/**
 * The agent's MCP client gets JSON-RPC errors it can show: one per request of the body that has an id (the refused
 * call says which tool; any other request of a batch says it was not sent because of it). A body of notifications
 * alone has nothing to answer: 403 with an error for no id.
 */
function jsonRpcRefusal(body: JsonRpcBody, calls: readonly ToolCall[]): { status: number; contentType: string; body: string } {
  // Each distinct tool once, and a few at most: every answer carries the list (N answers x N names was quadratic).
  const refused = [...new Set(calls.filter((c) => !c.allowed).map((c) => printableTool(c.tool)))].slice(0, 16);
  const errorFor = (id: unknown, message: string): unknown => ({ jsonrpc: '2.0', id, error: { code: TOOL_REFUSED, message, data: { keyswap: 'mcp_tool_denied', refused_tools: refused } } });
  const deniedById = new Map<unknown, ToolCall>();
  for (const c of calls) if (c.hasId && !c.allowed && !deniedById.has(c.id)) deniedById.set(c.id, c);
  const answers = body.messages.filter((m) => Object.hasOwn(m, 'method') && Object.hasOwn(m, 'id')).map((m) => {
    const call = deniedById.get(m.id);
    return errorFor(m.id, call !== undefined
      ? `keyswap refused this call: tool '${printableTool(call.tool)}' is not allowed for this MCP server (mcp.tools in keyswap's configuration)`
      : `keyswap did not send this request: its batch calls a tool keyswap refuses (${refused.join(', ')})`);
  });
  if (answers.length === 0) return { status: 403, contentType: 'application/json', body: `${JSON.stringify(errorFor(null, `keyswap refused a call to a tool this MCP server's policy does not allow (${refused.join(', ')})`))}\n` };
  return { status: 200, contentType: 'application/json', body: `${JSON.stringify(body.batch ? answers : answers[0])}\n` };
}

/**
 * The whole body, within MAX_MCP_BODY, the budget of all bodies held, and the upload timeouts (idle, and in all).
 * Its bytes stay counted until `release`.
 */
async function readBody(req: IncomingMessage | Http2ServerRequest, framing: Framing, timeouts: { readonly uploadIdleMs: number; readonly uploadMaxMs: number }): Promise<{ bytes: Buffer; release: () => void }> {
  if (framing.kind === 'length' && framing.bytes > MAX_MCP_BODY) throw new Refusal('mcp_body_too_large');
  // A declared length is reserved whole before a byte is read; a chunked body counts as it arrives.
  const declared = framing.kind === 'length' ? framing.bytes : 0;
  const share = bodies.share();
  if (!share.set(declared)) throw new Refusal('mcp_bodies_busy');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: Error | null): void => {
      clearTimeout(idle);
      clearTimeout(max);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', stop);
      req.off('close', onClose);
      if (err !== null) {
        share.release();
        req.pause();
        reject(err);
      } else {
        share.set(size);
        resolve({ bytes: Buffer.concat(chunks, size), release: share.release });
      }
    };
    const idle = setTimeout(() => stop(new Refusal('upload_timeout')), timeouts.uploadIdleMs);
    const max = setTimeout(() => stop(new Refusal('upload_timeout')), timeouts.uploadMaxMs);
    const onData = (chunk: Buffer): void => {
      idle.refresh();
      size += chunk.length;
      if (size > MAX_MCP_BODY) return stop(new Refusal('mcp_body_too_large'));
      if (!share.set(Math.max(declared, size))) return stop(new Refusal('mcp_bodies_busy'));
      chunks.push(chunk);
    };
    const onEnd = (): void => stop(null);
    const onClose = (): void => { if (!req.complete) stop(new Refusal('bad_request')); };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', stop);
    req.once('close', onClose);
  });
}

/**
 * The answer's filter, by its content type: an SSE stream event by event, a JSON body whole; null for anything
 * else (no MCP client reads tools from it). Under no tool policy, null.
 */
export function toolListFilter(snap: Snapshot, target: Target, current: () => Snapshot = () => snap): ((contentType: string | undefined) => Transform | null) | null {
  if (mcpToolRules(snap.policy, target.host, target.port, target.scheme).length === 0) return null;
  // Read again for each answer and each event: an SSE stream outlives reloads, and a narrowed list holds on it too.
  const rulesNow = (): ToolRule[] => mcpToolRules(current().policy, target.host, target.port, target.scheme);
  return (contentType) => {
    const type = mediaType(contentType);
    if (type === 'text/event-stream') {
      let hold: ((bytes: number) => boolean) | null = null;
      const t = sseEvents((event) => {
        const data = eventData(event);
        if (data === null) return event;
        const rewritten = rewriteMessages(Buffer.from(data), rulesNow());
        return rewritten === null ? event : withData(event, rewritten);
      }, MAX_MCP_ANSWER, (bytes) => hold?.(bytes) ?? true);
      hold = answerHold(t);
      return t;
    }
    if (type === 'application/json' || (type?.endsWith('+json') ?? false)) return wholeJson(rulesNow);
    return null;
  };
}

/** The text of a message or batch with every tools list filtered, or null when it lists none (passed as it came). */
function rewriteMessages(bytes: Buffer, rules: readonly ToolRule[]): string | null {
  // Read as the agent's client reads it (the last of a repeated key): what is rewritten is written once, normalised.
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const list = Array.isArray(value) ? value : [value];
  let changed = false;
  const out = list.map((m) => {
    if (!isObject(m)) return m;
    const filtered = filterToolList(m, rules);
    if (filtered === null) return m;
    changed = true;
    return filtered;
  });
  if (!changed) return null;
  return JSON.stringify(Array.isArray(value) ? out : out[0]);
}

function wholeJson(rules: () => readonly ToolRule[]): Transform {
  const chunks: Buffer[] = [];
  let size = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      size += chunk.length;
      if (size > MAX_MCP_ANSWER) return done(new Error(`an answer of over ${MAX_MCP_ANSWER} bytes`));
      if (!hold(size)) return done(new Error('too many answers under a tool policy held at once'));
      chunks.push(chunk);
      done();
    },
    flush(done: TransformCallback) {
      const bytes = Buffer.concat(chunks, size);
      const rewritten = rewriteMessages(bytes, rules());
      done(null, rewritten === null ? bytes : Buffer.from(rewritten));
    },
  });
  const hold = answerHold(t);
  return t;
}
