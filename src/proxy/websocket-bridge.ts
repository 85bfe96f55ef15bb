import type { Duplex } from 'node:stream';
import WebSocket, { type RawData } from 'ws';
import type { Exchange } from './exchange.js';
import { Refusal } from './refusal.js';
import { EchoBlocked } from '../scrub/index.js';
import type { WebSocketPlan } from './websocket.js';

/** Past this many bytes queued towards one side, the other side is paused until it drains. */
const HIGH_WATER = 4 * 1024 * 1024;

/**
 * Bytes of unfinished agent messages, across every WebSocket: ws holds a message whole until its last frame, so
 * many agents each stopping one byte short of 16 MiB would otherwise pin that much each. Past the budget, the
 * connection that pushes it over (holding more than 1 MiB itself) is cut.
 */
const ASSEMBLY_BUDGET = 64 * 1024 * 1024;
let assembling = 0;

/** Relays messages both ways until either side closes; audits the end like any response. */
export function bridge(ex: Exchange, agent: WebSocket, upstream: WebSocket, plan: WebSocketPlan, raw: Duplex): void {
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
  // A client the configuration stops admitting loses its WebSocket at once, not at its next substitution.
  ex.holdOpen(agent, 'websocket', () => {
    end(1008, 'keyswap: client no longer admitted', false);
    // Not the close handshake's 30 s: the agent gets its 1008 and the connection goes.
    setTimeout(() => { agent.terminate(); upstream.terminate(); }, 200).unref();
  });
  // `failed`: the side whose protocol error ended it; ws has already sent it its close (1002, 1007, 1009).
  const end = (code: number | null, reason: string, clean: boolean, failed: WebSocket | null = null): void => {
    if (ended) return;
    ended = true;
    ex.letGo(agent);
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
