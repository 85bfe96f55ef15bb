import { ServerResponse, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { endToEndPairs, flatten, formatAuthority, type HeaderPair } from '../wire/index.js';
import type { Exchange, Target } from './exchange.js';
import { answerOf, respond } from './respond.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { EchoBlocked, type Scrubber } from '../scrub/index.js';
import { bridge } from './websocket-bridge.js';

/** A message larger than this (after reassembly) closes the connection with 1009: keyswap holds each message whole to read it. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** The handshake's own headers: ws writes them for each side; the agent's are never forwarded. */
const HANDSHAKE_HEADERS = new Set(['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'sec-websocket-accept']);

/**
 * A placeholder to look for in the agent's text messages: a `websocket_message` site the handshake's binding
 * covers (replaced by `value`), or a honeytoken's (value null: only its use is recorded, and it travels verbatim).
 */
export interface MessageSubstitution {
  readonly secretName: string;
  readonly placeholder: string;
  readonly value: string | null;
}

/** The upgraded request as the pipeline built it: secrets placed in its head, decisions durable. */
export interface WebSocketPlan {
  /** Path and query, as sent upstream. */
  readonly path: string;
  readonly headers: readonly HeaderPair[];
  /** Null when no secret is bound to this destination. */
  readonly scrubber: Scrubber | null;
  readonly substitutions: readonly MessageSubstitution[];
  /** Makes a message's substitutions durable (and counts them against `rate:`) before it is sent; throws a Refusal. */
  readonly beforeSubstituting: (secretNames: readonly string[]) => Promise<void>;
  readonly idleMs: number;
}

/**
 * The agent's upgrade, once the handshake has been decided and audited: keyswap completes the WebSocket with the
 * upstream first (strict TLS, the injected head), and only then with the agent. Each side is a WebSocket of its
 * own (the `ws` library reads and writes the frames), so keyswap reads whole messages, never a frame boundary the
 * two sides could disagree on. Upstream messages are scrubbed of every secret bound here (an echo is replaced by
 * its placeholder, or with `response_scrub: block` the connection is closed 1008); agent messages pass verbatim
 * unless a `websocket_message` site opts in to substitution. Compression is never negotiated, so what is
 * scrubbed is what is read.
 */
export function openWebSocket(ex: Exchange, target: Target, req: IncomingMessage, socket: Duplex, head: Buffer, plan: WebSocketPlan): void {
  const url = webSocketUrl(target, plan.path);
  const protocols = plan.headers.filter(([n]) => n === 'sec-websocket-protocol').flatMap(([, v]) => v.split(',')).map((p) => p.trim()).filter((p) => p !== '');
  const upstream = new WebSocket(url, protocols, {
    headers: headerObject(plan.headers.filter(([n]) => !HANDSHAKE_HEADERS.has(n))),
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    followRedirects: false,
    handshakeTimeout: ex.snap.config.upstream.connectTimeoutMs + ex.snap.config.upstream.idleTimeoutMs,
    // The connection is keyswap's own (resolve, parent proxy, strict TLS), never one ws would dial.
    createConnection: ((_opts: unknown, done: (err: Error | null, s?: Socket) => void) => {
      ex.snap.upstream.connect(target).then((s) => done(null, s), (err: Error) => done(err));
      return undefined;
    }) as unknown as typeof import('node:net').createConnection,
  });
  let upgradeHead: IncomingMessage | null = null;
  let stage: 'connecting' | 'answered' | 'open' | 'bridged' = 'connecting';
  upstream.once('upgrade', (res: IncomingMessage) => { upgradeHead = res; });
  // The agent leaving before the bridge exists takes the upstream connection with it.
  socket.once('close', () => { if (stage !== 'bridged') upstream.terminate(); });
  upstream.once('unexpected-response', (upReq: ClientRequest, upRes: IncomingMessage) => {
    // Not a WebSocket after all (401, a redirect, a 426): the agent gets that answer, scrubbed, on a connection that then closes.
    stage = 'answered';
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => socket.end());
    socket.resume();
    respond(ex, req, res, answerOf(upReq, upRes), plan.scrubber, null);
  });
  // Before the handshake completes, a failure is a refusal from the table; after it, the bridge ends both sides.
  upstream.on('error', (err: Error & { code?: string }) => {
    if (stage !== 'connecting') return;
    stage = 'answered';
    ex.refuse(err instanceof Refusal ? err : upstreamRefusal(err));
  });
  upstream.once('open', () => {
    stage = 'open';
    if (socket.destroyed) {
      upstream.terminate();
      return;
    }
    let extra: string[];
    let chosen: string | false;
    try {
      extra = upgradeHead === null ? [] : acceptHeaders(upgradeHead, plan.scrubber);
      chosen = protocolForAgent(req, upstream.protocol, plan.scrubber);
    } catch (err) {
      upstream.terminate();
      if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
      ex.refuse(err instanceof Refusal ? err : new Refusal('upstream_echoed_secret', { cause: err }));
      return;
    }
    const server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES, handleProtocols: () => chosen });
    server.once('headers', (headers: string[]) => headers.push(...extra));
    socket.resume();
    server.handleUpgrade(req, socket as Socket, head, (agent) => {
      stage = 'bridged';
      bridge(ex, agent, upstream, plan, socket);
    });
  });
}

/**
 * The agent's handshake, checked before anything is decided or dialled: GET, `Upgrade: websocket`, version 13, a
 * key of 16 bytes, and a request target ws will send exactly as received. ws sends the URL's own reading of the
 * path: one that URL parsing would change (dot segments, a backslash, characters it escapes) is refused, so the
 * upstream sees the path policy decided on. Throws bad_request.
 */
export function checkHandshake(req: IncomingMessage, target: Target, requestTarget: string): void {
  const key = req.headers['sec-websocket-key'];
  const ok = req.method === 'GET' && (req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket'
    && req.headers['sec-websocket-version'] === '13' && typeof key === 'string' && /^[A-Za-z0-9+/]{22}==$/.test(key.trim());
  if (!ok) throw new Refusal('bad_request');
  webSocketUrl(target, requestTarget);
}

function webSocketUrl(target: Target, path: string): string {
  const url = `${target.scheme === 'https' ? 'wss' : 'ws'}://${formatAuthority(target.host, target.port, target.scheme)}${path}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Refusal('bad_request');
  }
  if (`${parsed.pathname}${parsed.search}` !== path) throw new Refusal('bad_request');
  return url;
}

/**
 * The upstream's 101 headers the agent may see (cookies, rate-limit and request-id headers), scrubbed: not the
 * handshake's own, which ws writes for the agent's side.
 */
function acceptHeaders(res: IncomingMessage, scrubber: Scrubber | null): string[] {
  const pairs = endToEndPairs(res.rawHeaders).filter(([n]) => !HANDSHAKE_HEADERS.has(n) && n !== 'content-length');
  return flatten(pairs).reduce<string[]>((lines, text, i, all) => (i % 2 === 0 ? [...lines, `${scrub(scrubber, text)}: ${scrub(scrubber, all[i + 1] ?? '')}`] : lines), []);
}

const scrub = (scrubber: Scrubber | null, text: string): string => (scrubber === null ? text : scrubber.scrubText(text));

/**
 * The subprotocol the agent is told: the upstream's choice as the agent offered it. A subprotocol can carry a
 * credential (Kubernetes' `base64url.bearer.authorization.k8s.io.<token>`), injected at a header site, so the
 * upstream's echo of it is scrubbed back to the agent's own token; a choice the agent did not offer is refused.
 */
function protocolForAgent(req: IncomingMessage, upstreamChoice: string, scrubber: Scrubber | null): string | false {
  if (upstreamChoice === '') return false;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const seen = scrub(scrubber, upstreamChoice);
  if (!offered.includes(seen)) throw new Refusal(seen === upstreamChoice ? 'upstream_failed' : 'upstream_echoed_secret');
  return seen;
}

/** Headers as ws takes them: one value per name, repeated ones joined as HTTP allows (cookies with '; '). */
function headerObject(pairs: readonly HeaderPair[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) out[name] = out[name] === undefined ? value : `${out[name]}${name === 'cookie' ? '; ' : ', '}${value}`;
  return out;
}
