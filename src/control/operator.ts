import { createHash, randomBytes } from 'node:crypto';
import type { AuditEvent } from '../audit/index.js';
import type { ClientSpec } from '../config/index.js';
import type { AccessProposal, HeldRequest, HoldAnswer, OperatorGate } from '../proxy/index.js';
import { AccessRequests } from './access-requests.js';
import { Approvals } from './approvals.js';
import { EMPTY_RECORD, writeOperatorFile, type OperatorRecord } from './operator-file.js';

export type Actor = 'cli' | 'ui';

/** A refusal of an operator's request, with the HTTP status the control API answers it with. */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * A session `keyswap run` opened: an ephemeral client acting for `parent` until it ends or expires. What it may do
 * is derived from its parent as the configuration has it now (clients()): a session never keeps what its parent lost.
 */
interface Session {
  readonly name: string;
  readonly tokenSha256: string;
  readonly parent: string;
  readonly parentFingerprint: string;
  /** --secrets: at most these of the parent's; null: all of them. */
  readonly secrets: ReadonlySet<string> | null;
  readonly endsAtMs: number | null;
  readonly command: string;
  readonly startedAtMs: number;
}

export interface OperatorDeps {
  readonly stateDir: string;
  readonly record: OperatorRecord;
  /** Durable: resolves once the record is fsynced. */
  readonly audit: (e: AuditEvent) => Promise<void>;
  /** The clients the configuration names now (null: no `clients:` section). */
  readonly configuredClients: () => ReadonlyMap<string, ClientSpec> | null;
  /** Who may connect changed (a revocation, a session): the proxy re-reads its clients and closes what lost them. */
  readonly clientsChanged: () => void;
  readonly now?: () => number;
}

/**
 * What operators decide while keyswap runs: the lockdown, revoked clients, sessions and held approvals. The
 * pipeline sees it as an OperatorGate; the control API (api.ts) is the only way to change it. What restricts
 * (lockdown, revoke, deny, a session's end) takes effect first and is recorded after; what permits (lifting a
 * lockdown, an approval, a new session) is recorded durably first and refused if it cannot be.
 */
export class Operator implements OperatorGate {
  readonly approvals: Approvals;
  readonly access: AccessRequests;
  readonly #deps: OperatorDeps;
  readonly #now: () => number;
  #record: OperatorRecord = EMPTY_RECORD;
  #lockdown: OperatorGate['lockdown'] = null;
  readonly #sessions = new Map<string, Session>();
  #saving: Promise<void> = Promise.resolve();

  constructor(deps: OperatorDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#setRecord(deps.record);
    this.approvals = new Approvals(this.#now);
    this.access = new AccessRequests(this.#now);
    this.access.lapsed = (id, p) => { void deps.audit(accessEvent(id, 'expired', null, p)).catch(() => {}); };
  }

  /** Asked on the request path (per request that would carry a secret): a field, kept with the record. */
  get lockdown(): OperatorGate['lockdown'] { return this.#lockdown; }

  get record(): OperatorRecord { return this.#record; }

  remembered(key: string): boolean { return this.approvals.remembered(key); }

  hasRoom(account: string | null): boolean { return this.approvals.hasRoom(account); }

  hold(request: HeldRequest, gone: AbortSignal): Promise<HoldAnswer> { return this.approvals.hold(request, gone); }

  async proposeAccess(p: AccessProposal): Promise<{ readonly kind: 'proposed'; readonly id: string } | { readonly kind: 'full' }> {
    const same = this.access.same(p);
    if (same !== null) return { kind: 'proposed', id: same };
    if (!this.access.hasRoom(p.account)) return { kind: 'full' };
    // Durable before any operator is shown it: what an operator answers is always in the log first.
    const id = this.access.add(p);
    try {
      await this.#deps.audit(accessEvent(id, 'requested', 'agent', p));
    } catch (err) {
      this.access.take(id);
      throw err;
    }
    return { kind: 'proposed', id };
  }

  /**
   * An operator's answer to an agent's access request. `accepted` is said by the CLI once it has written the
   * binding and keyswap has reloaded it; the request leaves the list either way.
   */
  async answerAccess(actor: Actor, id: string, step: 'accepted' | 'declined'): Promise<void> {
    const held = this.access.take(id);
    if (held === null) throw new ControlError(404, `no access request is pending under ${id} (answered, lapsed, or keyswap restarted; see: keyswap approvals)`);
    await this.#deps.audit(accessEvent(id, step, actor, held.proposal));
  }

  async setLockdown(actor: Actor, on: boolean, reason: string | null): Promise<void> {
    if (on) {
      this.#setRecord({ ...this.#record, lockdown: { reason, since: new Date(this.#now()).toISOString(), by: actor } });
      // Held requests would carry a secret: lockdown answers them too, and forgets what was remembered (after an
      // incident, every request of the agent it was aimed at is asked about again).
      for (const p of this.approvals.list()) this.approvals.answer(p.id, { kind: 'denied', by: actor });
      this.approvals.forget();
      await this.#persist();
      await this.#deps.audit({ type: 'operator', actor, action: 'lockdown', target: null, reason });
      return;
    }
    if (this.#record.lockdown === null) return;
    await this.#deps.audit({ type: 'operator', actor, action: 'lockdown_off', target: null, reason });
    // Applied to the record as it is now, not as it was before the wait: a revocation made meanwhile stays.
    this.#setRecord({ ...this.#record, lockdown: null });
    await this.#persist();
  }

  /**
   * Revokes a client the configuration names (its current credential: a new token issued later is not revoked)
   * or ends a session. Its open connections close at once (the proxy's sweep).
   */
  async revoke(actor: Actor, name: string): Promise<'client' | 'session'> {
    const client = this.#deps.configuredClients()?.get(name);
    // A client the file names is what the operator sees under this name (a session a reload shadowed goes too).
    if (client !== undefined) await this.endSession(actor, name);
    else if (this.#sessions.has(name)) {
      await this.endSession(actor, name);
      return 'session';
    }
    if (client === undefined) throw new ControlError(404, `${name} is neither a client of the running configuration nor a session (see: keyswap client list)`);
    const fingerprint = fingerprintOf(client);
    if (!this.#record.revoked.some((r) => r.fingerprint === fingerprint)) {
      this.#setRecord({ ...this.#record, revoked: [...this.#record.revoked, { client: name, fingerprint, at: new Date(this.#now()).toISOString(), by: actor }] });
    }
    this.#deps.clientsChanged();
    await this.#persist();
    await this.#deps.audit({ type: 'operator', actor, action: 'client_revoked', target: name, reason: null });
    // What a revoked client asked for goes with it: an operator must not accept it later as if it still stood.
    for (const { id, proposal } of this.access.takeClient(name)) await this.#deps.audit(accessEvent(id, 'declined', actor, proposal));
    return 'client';
  }

  /**
   * A session for `keyswap run`: a fresh token of its own (returned once, kept only as its SHA-256), the parent's
   * secrets or fewer, ending with the command, at `ttlMs`, or with its parent.
   */
  async startSession(actor: Actor, opts: { readonly parent: string; readonly secrets: readonly string[] | null; readonly ttlMs: number | null; readonly command: string }): Promise<{ readonly name: string; readonly token: string; readonly expiresAtMs: number | null }> {
    const clients = this.clients();
    if (clients === null) throw new ControlError(409, 'the running configuration has no clients: section: any local process may use keyswap, so a session would bound nothing');
    const parent = clients.get(opts.parent);
    if (parent === undefined || parent.session !== undefined) throw new ControlError(404, `${opts.parent} is not a client of the running configuration (see: keyswap client list)`);
    const outside = (opts.secrets ?? []).filter((s) => !parent.secrets.has(s));
    if (outside.length > 0) throw new ControlError(403, `client ${parent.name} may not unlock ${outside.join(', ')}; a session gets its client's secrets or fewer`);
    let name: string;
    do name = `run-${randomBytes(3).toString('hex')}`; while (clients.has(name));
    const token = `ks_${randomBytes(32).toString('base64url')}`;
    const startedAtMs = this.#now();
    const session: Session = {
      name, tokenSha256: createHash('sha256').update(token).digest('hex'), parent: parent.name, parentFingerprint: fingerprintOf(parent),
      secrets: opts.secrets === null ? null : new Set(opts.secrets), endsAtMs: opts.ttlMs === null ? null : startedAtMs + opts.ttlMs, command: opts.command, startedAtMs,
    };
    // The program's name only: its arguments may hold anything (a key pasted on a command line included).
    const program = (opts.command.split(' ', 1)[0] ?? '').split('/').pop() ?? '';
    await this.#deps.audit({ type: 'operator', actor, action: 'session_started', target: name, reason: `for ${parent.name}: ${program}`.slice(0, 200) });
    this.#sessions.set(name, session);
    this.#deps.clientsChanged();
    const spec = sessionSpec(session, parent);
    return { name, token, expiresAtMs: spec.expiresAtMs };
  }

  async endSession(actor: Actor, name: string): Promise<void> {
    if (!this.#sessions.delete(name)) return;
    this.#deps.clientsChanged();
    await this.#deps.audit({ type: 'operator', actor, action: 'session_ended', target: name, reason: null });
  }

  /**
   * The clients admitted now: the configuration's, less those revoked, plus the sessions whose parent is still
   * admitted with the credential it had when the session began.
   */
  clients(): ReadonlyMap<string, ClientSpec> | null {
    const configured = this.#deps.configuredClients();
    if (configured === null) return null;
    const revoked = new Set(this.#record.revoked.map((r) => r.fingerprint));
    const out = new Map<string, ClientSpec>();
    for (const [name, c] of configured) if (!revoked.has(fingerprintOf(c))) out.set(name, c);
    for (const [name, s] of this.#sessions) {
      const parent = out.get(s.parent);
      if (parent !== undefined && parent.session === undefined && fingerprintOf(parent) === s.parentFingerprint && !out.has(name)) out.set(name, sessionSpec(s, parent));
    }
    return out;
  }

  #setRecord(record: OperatorRecord): void {
    this.#record = record;
    const l = record.lockdown;
    this.#lockdown = l === null ? null : { reason: l.reason, sinceMs: Date.parse(l.since) };
  }

  /** Writes the record as it is when the write starts (writes in turn, so the file ends as memory is). */
  async #persist(): Promise<void> {
    this.#saving = this.#saving.catch(() => {}).then(() => writeOperatorFile(this.#deps.stateDir, this.#record));
    await this.#saving;
  }
}

function accessEvent(id: string, step: 'requested' | 'accepted' | 'declined' | 'expired', by: 'agent' | Actor | null, p: AccessProposal): AuditEvent {
  return { type: 'access_request', access_id: id, step, by, client: p.client, secret_name: p.secretName, host: p.host, port: p.port, methods: p.methods, paths: p.paths };
}

/** A session as a client: its parent's secrets now (narrowed by --secrets), ending no later than its parent. */
function sessionSpec(s: Session, parent: ClientSpec): ClientSpec {
  const ends = Math.min(s.endsAtMs ?? Number.POSITIVE_INFINITY, parent.expiresAtMs ?? Number.POSITIVE_INFINITY);
  return {
    name: s.name, tokenSha256: s.tokenSha256, spiffeId: null,
    secrets: s.secrets === null ? parent.secrets : new Set([...s.secrets].filter((n) => parent.secrets.has(n))),
    expiresAtMs: ends === Number.POSITIVE_INFINITY ? null : ends,
    session: { parent: parent.name, command: s.command, startedAtMs: s.startedAtMs },
  };
}

/** A client's credential, as revocation names it: its name with its token's hash or its SPIFFE ID. */
function fingerprintOf(c: ClientSpec): string {
  return createHash('sha256').update(`${c.name}\0${c.tokenSha256 ?? ''}\0${c.spiffeId ?? ''}`).digest('hex');
}
