import type { ClientSpec } from '../config/index.js';
import { clientNow } from './entries.js';
import type { Snapshot } from './snapshot.js';

/*
 * Every open connection, HTTP/2 session and WebSocket, under the client that opened it (none while there is no
 * `clients:`), so that a client the configuration in force stops admitting — removed or given a new token by a
 * reload, past its `expires`, or anyone at all once a reload adds `clients:` — loses them at once, not at its next request: a WebSocket relays on the upstream session its secret opened, a streaming
 * upload keeps going, an HTTP/2 session keeps its streams. Checked on every change of configuration and at each
 * client's expiry; what is closed is audited (`client_disconnected`).
 */

/** A connection's outer socket (its TLS, HTTP/1.1, HTTP/2 or tunnel go with it), or a WebSocket (closed 1008). */
export type LiveKind = 'connection' | 'websocket';

/** `client` null: opened while the configuration had no `clients:`, anyone on loopback then. */
interface Live { readonly kind: LiveKind; readonly client: ClientSpec | null; readonly close: () => void }

/** How long a connection being closed may still flush what is already written (a WebSocket's close frame). */
const CLOSE_GRACE_MS = 200;

/** Past this, a timer is armed again rather than set: setTimeout's limit is 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class LiveClients {
  readonly #live = new Map<object, Live>();
  /** Per agent socket, the key it is held under for each client that used it. */
  readonly #sockets = new WeakMap<object, Map<string | null, object>>();
  readonly #snapshot: () => Snapshot;
  #timer: NodeJS.Timeout | null = null;
  #timerAtMs = Number.POSITIVE_INFINITY;

  constructor(snapshot: () => Snapshot) {
    this.#snapshot = snapshot;
  }

  /** Holds `key` (a WebSocket) under its client until release(); a key held twice is held once. */
  hold(key: object, kind: LiveKind, client: ClientSpec | null, close: () => void): void {
    if (this.#live.has(key)) return;
    this.#live.set(key, { kind, client, close });
    this.#arm(client?.expiresAtMs ?? null);
  }

  /**
   * Holds an agent's socket under its client until it closes. Closing it ends it at once and destroys it a moment
   * later: long enough for a WebSocket's close frame (1008) to leave, too short for anything the configuration no
   * longer allows (every request and substitution on it is checked against the configuration in force meanwhile).
   */
  watch(socket: NodeJS.EventEmitter & { end(): void; destroy(): void }, client: ClientSpec | null): void {
    // A keep-alive connection may carry requests of several clients (each authenticated on its own): it is held
    // under each of them, and goes when any of them is no longer admitted.
    let keys = this.#sockets.get(socket);
    if (keys === undefined) {
      const held = new Map<string | null, object>();
      keys = held;
      this.#sockets.set(socket, held);
      socket.once('close', () => { for (const key of held.values()) this.release(key); });
    }
    const name = client?.name ?? null;
    if (keys.has(name)) return;
    const key = {};
    keys.set(name, key);
    this.hold(key, 'connection', client, () => {
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    });
  }

  release(key: object): void {
    this.#live.delete(key);
  }

  get size(): number { return this.#live.size; }

  /**
   * Closes what belongs to clients the configuration in force no longer admits, and audits it per client. Called
   * after every change of configuration, and by the timer at the next expiry.
   */
  sweep(): void {
    const snap = this.#snapshot();
    const closed = new Map<string | null, { reason: 'client_revoked' | 'client_expired' | 'clients_required'; connections: number; websockets: number }>();
    // WebSockets first: their close frames go out before the connections that carry them are ended.
    const order = [...this.#live].sort(([, a], [, b]) => (a.kind === b.kind ? 0 : a.kind === 'websocket' ? -1 : 1));
    for (const [key, live] of order) {
      const { current, isStale } = clientNow(snap, live.client);
      if (!isStale) continue;
      this.#live.delete(key);
      // What was opened with no client (no `clients:` then) goes once a reload requires one.
      const expired = current !== null && current.tokenSha256 === live.client?.tokenSha256 && current.spiffeId === live.client.spiffeId;
      const name = live.client?.name ?? null;
      const entry = closed.get(name) ?? { reason: live.client === null ? 'clients_required' : expired ? 'client_expired' : 'client_revoked', connections: 0, websockets: 0 };
      if (live.kind === 'websocket') entry.websockets++;
      else entry.connections++;
      closed.set(name, entry);
      live.close();
    }
    for (const [client, c] of closed) void snap.audit.appendLazy({ type: 'client_disconnected', client, reason: c.reason, connections: c.connections, websockets: c.websockets }).catch(() => {});
    this.#timerAtMs = Number.POSITIVE_INFINITY;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const live of this.#live.values()) this.#arm(clientNow(snap, live.client).expiresAtMs);
  }

  /** Stops the expiry timer (the listener is closing; its connections go with it). */
  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(expiresAtMs: number | null): void {
    if (expiresAtMs === null || expiresAtMs >= this.#timerAtMs) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAtMs = expiresAtMs;
    const delay = Math.max(0, expiresAtMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAtMs = Number.POSITIVE_INFINITY;
      // Armed short of a far expiry (the timer's limit): sweep() finds nothing and arms again.
      this.sweep();
    }, Math.min(delay, MAX_TIMER_MS));
    this.#timer.unref();
  }
}
