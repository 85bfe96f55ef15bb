import { ServerResponse, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { endToEndPairs, flatten, formatAuthority, type HeaderPair } from '../wire/index.js';
import type { Exchange, Target } from './exchange.js';
import { answerOf, respond } from './forward.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { EchoBlocked, type Scrubber } from './scrubber.js';

/** A message larger than this (after reassembly) closes the connection with 1009: keyswap holds each message whole to read it. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Past this many bytes queued towards one side, the other side is paused until it drains. */
const HIGH_WATER = 4 * 1024 * 1024;

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

/** Relays messages both ways until either side closes; audits the end like any response. */
/**
 * Bytes of unfinished agent messages, across every WebSocket: ws holds a message whole until its last frame, so
 * many agents each stopping one byte short of 16 MiB would otherwise pin that much each. Past the budget, the
 * connection that pushes it over (holding more than 1 MiB itself) is cut.
 */
const ASSEMBLY_BUDGET = 64 * 1024 * 1024;
let assembling = 0;

function bridge(ex: Exchange, agent: WebSocket, upstream: WebSocket, plan: WebSocketPlan, raw: Duplex): void {
  let pending = 0;
  const settlePending = (): void => {
    assembling -= pending;
    pending = 0;
  };
  raw.on('data', (chunk: Buffer) => {
    pending += chunk.length;
    assembling += chunk.length;
    if (assembling > ASSEMBLY_BUDGET && pending > 1024 * 1024) {
      ex.log.warn({ request_id: ex.id }, 'websocket closed: unfinished messages past the shared budget');
      // Cut, not closed: a close handshake would keep the half-read message until the agent answered it.
      agent.terminate();
      end(1001, '', false, agent);
    }
  });
  let bytesDown = 0;
  let ended = false;
  let idle: NodeJS.Timeout | null = null;
  const touch = (): void => {
    if (idle !== null) idle.refresh();
  };
  idle = setTimeout(() => end(1001, 'idle', true), plan.idleMs);
  idle.unref();
  // `failed`: the side whose protocol error ended it; ws has already sent it its close (1002, 1007, 1009).
  const end = (code: number | null, reason: string, clean: boolean, failed: WebSocket | null = null): void => {
    if (ended) return;
    ended = true;
    settlePending();
    if (idle !== null) clearTimeout(idle);
    for (const side of [agent, upstream]) if (side !== failed) closeWith(side, failed === null ? code : 1001, failed === null ? reason : '');
    for (const [secretName, count] of plan.scrubber?.counts ?? []) ex.note({ type: 'response_scrubbed', secret_name: secretName, count, action: 'redacted' });
    ex.note({ type: 'upstream_response', status: 101, bytes: bytesDown, ms: Math.round(ex.now() - ex.startedMs), complete: clean }, true);
  };

  // What the agent has been sent so far, as far back as an echo could reach: messages arrive whole, but an
  // upstream can cut a value across two of them, and the agent can join them again.
  let tail = '';
  upstream.on('message', (data: RawData, isBinary: boolean) => {
    touch();
    const bytes = data as Buffer;
    let out = bytes;
    if (plan.scrubber !== null) {
      const text = bytes.toString('latin1');
      let scrubbed: string;
      try {
        scrubbed = plan.scrubber.scrubText(tail + text);
        // An echo that begins in what was already sent cannot be redacted: the connection is closed instead.
        if (!scrubbed.startsWith(tail)) throw new EchoBlocked(plan.scrubber.secretIn(tail + text) ?? '');
      } catch (err) {
        if (err instanceof EchoBlocked) ex.note({ type: 'response_scrubbed', secret_name: err.secretName, count: 1, action: 'blocked' });
        end(1008, 'keyswap: upstream message echoed a credential', false);
        return;
      }
      const sent = scrubbed.slice(tail.length);
      tail = (tail + sent).slice(-plan.scrubber.reach);
      out = Buffer.from(sent, 'latin1');
    }
    bytesDown += out.length;
    sendWithBackpressure(upstream, agent, out, isBinary);
  });

  // Agent messages go out in order; one that substitutes waits for its audit record, and those behind it wait too.
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;
  agent.on('message', (data: RawData, isBinary: boolean) => {
    touch();
    settlePending();
    const bytes = data as Buffer;
    const found = isBinary ? [] : plan.substitutions.filter((s) => bytes.includes(s.placeholder));
    if (found.length === 0 && queued === 0) {
      sendWithBackpressure(agent, upstream, bytes, isBinary);
      return;
    }
    queued++;
    if (queued > 16) agent.pause();
    queue = queue.then(async () => {
      let out = bytes;
      if (found.length > 0) {
        await plan.beforeSubstituting(found.map((s) => s.secretName));
        let text = bytes.toString('utf8');
        for (const s of found) if (s.value !== null) text = text.replaceAll(s.placeholder, s.value);
        out = Buffer.from(text, 'utf8');
      }
      if (!ended) sendWithBackpressure(agent, upstream, out, false);
    }).catch((err: unknown) => {
      if (err instanceof Refusal) ex.note({ type: 'deny', decision: 'denied', reason: err.code, status: 1008 });
      ex.log.warn({ request_id: ex.id, code: err instanceof Refusal ? err.code : 'internal' }, 'websocket message refused');
      end(1008, 'keyswap: message refused', false);
    }).finally(() => {
      queued--;
      if (queued <= 16 && agent.isPaused && !ended) agent.resume();
    });
  });

  // Close reasons are text like messages. The agent's is dropped when it holds a watched placeholder (a
  // honeytoken's use is still recorded); the upstream's is read after what was already sent, as a message is.
  agent.on('close', (code: number, reason: Buffer) => {
    const text = reason.toString('utf8');
    const watched = plan.substitutions.filter((s) => text.includes(s.placeholder));
    for (const s of watched) if (s.value === null) ex.note({ type: 'honeytoken_triggered', decision: 'denied', secret_name: s.secretName });
    end(code, watched.length > 0 ? '' : text, true);
  });
  upstream.on('close', (code: number, reason: Buffer) => {
    let text = reason.toString('utf8');
    if (plan.scrubber !== null) {
      try {
        const scrubbed = plan.scrubber.scrubText(tail + reason.toString('latin1'));
        text = scrubbed.startsWith(tail) ? Buffer.from(scrubbed.slice(tail.length), 'latin1').toString('utf8') : '';
      } catch {
        text = '';
      }
    }
    end(code, text, true);
  });
  // A protocol error (a bad frame, a message past the limit) ends both sides; ws has already answered it on its own side.
  agent.on('error', () => end(null, '', false, agent));
  upstream.on('error', () => end(null, '', false, upstream));
}

/** Sends, pausing the source while the destination has more than HIGH_WATER queued. */
function sendWithBackpressure(from: WebSocket, to: WebSocket, data: Buffer, isBinary: boolean): void {
  if (to.readyState !== WebSocket.OPEN) return;
  to.send(data, { binary: isBinary }, () => {
    if (from.isPaused && to.bufferedAmount < HIGH_WATER / 4 && from.readyState === WebSocket.OPEN) from.resume();
  });
  if (to.bufferedAmount > HIGH_WATER && !from.isPaused) from.pause();
}

/** Closes one side with the other's code when it is one that may be sent; 1005 (none given) closes without one. */
function closeWith(side: WebSocket, code: number | null, reason: string): void {
  if (side.readyState === WebSocket.CLOSED) return;
  const sendable = code !== null && (code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999));
  if (code === 1005) side.close();
  else if (sendable) side.close(code, Buffer.byteLength(reason) <= 123 ? reason : '');
  else side.terminate();
  // A peer that never answers the close handshake is cut after ws's own 30 s close timer.
}
