import type { IncomingMessage } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import { Readable, type Duplex, type Transform } from 'node:stream';
import { accountOf, namesToFetch, minterInputs, type ClientSpec, type InjectSpec, type SecretSpec } from '../config/index.js';
import { SharedStateUnavailable, type Reservation } from '../usage/index.js';
import type { MintService } from '../mint/index.js';
import { applyPlacements, createBodyRewriter, renderSecret, type BodySubstitution, type Placement, type RequestParts } from '../inject/index.js';
import { decide, isBoundDestination, namedResources, type Declined, type Injection, type RequestFacts } from '../policy/index.js';
import { SecretNotFound, type Secret } from '../secrets/index.js';
import { endToEndPairs, formatAuthority, h2RequestHead, isMethodToken, isRequestTarget, mediaType, requestFraming, setHeader, type Framing, type HeaderPair } from '../wire/index.js';
import type { Exchange, ExchangeEvent, Target } from './exchange.js';
import { clientNow } from './entries.js';
import { forward, forwardH2, type Outbound } from './forward.js';
import { isGone, type AgentResponse } from './agent-response.js';
import { Refusal, upstreamRefusal } from './refusal.js';
import { signRequest } from './sign-request.js';
import type { Snapshot } from './snapshot.js';
import { scrubberFor, scrubsAt } from './scrub-targets.js';
import { auditMethod, operatorPath } from './audit-facts.js';
import { checkHandshake, openWebSocket } from './websocket.js';
import { guardStillHolds, guardToolCalls, toolListFilter, type GuardedBody } from './mcp-gate.js';

/** Where the answer goes: an HTTP response, or the agent's socket once a WebSocket handshake is upgraded. */
export type Delivery = { readonly kind: 'response'; readonly res: AgentResponse } | { readonly kind: 'websocket'; readonly req: IncomingMessage; readonly socket: Duplex; readonly head: Buffer };

/** The only content codings keyswap can undo to scrub a response, and so the only ones it asks for. */
const ACCEPTED_ENCODINGS = 'gzip, deflate, br';

/**
 * The request path of DESIGN.md §1 for one request on a decrypted (or plain-http, or routed) connection:
 * facts → decide → secrets → durable audit → build → upstream. Any failure before the upstream request exists
 * ends in a refusal and nothing is sent (K4); once the response head is out, a failure breaks the transfer.
 */
export async function runPipeline(ex: Exchange, target: Target, req: IncomingMessage | Http2ServerRequest, to: Delivery, requestTarget: string): Promise<void> {
  // A use admitted under `usage:` quotas: counted when the request goes out, released on every other way out.
  let use: Reservation | null = null;
  // A body read whole under an MCP tool policy: counted in that policy's memory budget until this request is sent or refused.
  let guarded: GuardedBody | null = null;
  try {
    const queryAt = requestTarget.indexOf('?');
    const path = queryAt < 0 ? requestTarget : requestTarget.slice(0, queryAt);
    const query = queryAt < 0 ? '' : requestTarget.slice(queryAt + 1);
    // The method and target are the bytes that go upstream: an HTTP/2 method in lower case (nghttp2 takes `head`,
    // Node's client sends HEAD) or a raw byte past ASCII in the target (nghttp2 passes them) is refused, never
    // decided on as one thing and sent as another.
    if (!path.startsWith('/') || !isRequestTarget(requestTarget) || !isMethodToken(ex.method)) throw new Refusal('bad_request');
    // One reading of the head for both protocols: an HTTP/2 request's is put in HTTP/1.1 form here, once.
    const { raw, framing } = req instanceof Http2ServerRequest ? h2RequestHead(req.rawHeaders, req.stream.endAfterHeaders) : { raw: req.rawHeaders, framing: requestFraming(req.rawHeaders) };
    // A HEAD with content has no defined meaning (RFC 9110 §9.3.2), and its answer ends before its body is read:
    // measured here, Node's server then read the rest of that body as the next request. Refused, never forwarded.
    if (framing.kind === 'ambiguous' || (ex.method === 'HEAD' && framing.kind !== 'none')) throw new Refusal('bad_request');
    // A WebSocket handshake has no body: bytes after its head are frames, which only the bridge reads.
    if (to.kind === 'websocket') {
      if (framing.kind !== 'none') throw new Refusal('bad_request');
      checkHandshake(to.req, target, requestTarget);
    }
    if (ex.isLoop) throw new Refusal('self_destination');
    // `unmatched_destination_policy: deny` holds per request, on whichever connection it came: a reload that leaves
    // this host unbound stops requests on connections decrypted before it, not only new CONNECTs.
    if (ex.snap.policy.unmatchedDestinationPolicy === 'deny' && !isBoundDestination(ex.snap.policy, target.host, target.port, target.scheme)) throw new Refusal('unbound_destination');

    // One reading of the wire: policy decides on the headers that go upstream. The agent's Host is checked
    // against the target, then sent in one canonical spelling; framing headers are set from `framing` alone.
    const sent = endToEndPairs(raw);
    const agentHost = target.isRoute ? formatAuthority(target.host, target.port, 'https') : sent.find(([n]) => n === 'host')?.[1];
    const canonicalHost = formatAuthority(target.host, target.port, target.scheme);
    const headers: HeaderPair[] = [];
    for (const [name, value] of sent) {
      if (name === 'content-length') continue;
      headers.push([name, name === 'host' ? canonicalHost : value]);
    }
    if (target.isRoute && !headers.some(([n]) => n === 'host')) headers.unshift(['host', canonicalHost]);
    const facts: RequestFacts = {
      scheme: target.scheme, connectHost: target.host, connectPort: target.port, sni: target.sni, hostHeader: agentHost,
      method: ex.method, path, query, headers, client: target.client, contentType: mediaType(req.headers['content-type']),
      isWebSocket: to.kind === 'websocket',
    };
    const verdict = decide(facts, ex.snap.policy);
    if (verdict.kind === 'deny') throw new Refusal(verdict.reason);

    // A plain-http hop through the parent proxy would show it the secret: https, or a host no_proxy names, only.
    if (target.scheme === 'http' && (verdict.injections.length > 0 || verdict.bodyInjectors.length > 0) && ex.snap.upstream.dialer.parentFor(target.host) !== null) {
      throw new Refusal('plaintext_via_parent');
    }
    const carrying = [...verdict.injections, ...verdict.bodyInjectors];
    if (carrying.length > 0 && ex.snap.operator.lockdown !== null) {
      // A trap sprung during a lockdown is still a trap: recorded (and alerted) though nothing is sent.
      for (const s of [...verdict.injections.map((i) => i.secret), ...verdict.declined.map((d) => d.secret)].filter((x) => x.honeytoken)) ex.note({ type: 'honeytoken_triggered', decision: 'denied', secret_name: s.name });
      throw new Refusal('lockdown');
    }
    // An MCP server's tool policy (`mcp: { tools }`): its body read and judged before anything else is asked of
    // anyone (an operator, a quota, the backend); a call it does not allow is answered here.
    guarded = await guardToolCalls(ex, target, req, framing, facts.headers, to.kind === 'websocket');
    // The body was read to judge it; a signature would need to read it again, and as it goes.
    if (guarded !== null && verdict.injections.some((i) => i.sites.some((s) => s.render.kind === 'signed'))) throw new Refusal('signing_unsupported');
    // The bindings an operator approved this request for (`approve:`), by secret and binding.
    const approved = new Set<string>();
    await awaitApproval(ex, to, carrying, framing, path, approved);
    await enforceRates(ex, verdict.injections, Date.now());
    // A honeytoken is a trap, not a use: never counted, and never refused by a quota before it is recorded.
    use = await admitUse(ex, carrying.filter((i) => !i.secret.honeytoken).map((i) => i.secret.name), target.client);
    // Every secret this request may carry, and every secret bound to this destination, fetched before anything
    // is sent: the scrubber must know a body secret before the upstream can answer early, and any bound secret
    // may come back in a response (an earlier request, or an earlier keyswap, stored it upstream) (K1). A
    // failure here sends nothing.
    const scrubbed = verdict.scrubbed;
    const carried = carrying.map((i) => i.secret);
    // A honeytoken only scrubbed here may be a pure decoy, with no value in the backend: nothing to find, no error.
    const values = await fetchValues(ex.snap, [...carried, ...scrubbed.filter((s) => !s.honeytoken)], scrubbed.filter((s) => s.honeytoken && !carried.includes(s)));
    const nowMs = Date.now(); // wall-clock for rendering (totp); ex.now is monotonic, for durations only
    // Its own copy: placements write values into these, while `facts.headers` must keep what the agent sent (a
    // decision made again after a wait reads them).
    const parts: RequestParts = { headers: headers.map(([n, v]): HeaderPair => [n, v]), path, query };
    const minted = await mintedCredentials(ex.snap.mint, verdict.injections, values);
    const placements = placementsOf(verdict.injections, values, nowMs, minted);
    applyPlacements(parts, placements);
    const toolFilter = toolListFilter(ex.snap, target, ex.current);
    if (scrubsAt(ex.snap, target, scrubbed)) {
      setHeader(parts.headers, 'accept-encoding', ACCEPTED_ENCODINGS);
      // gRPC compresses each message on its own (grpc-encoding), out of the scrubber's sight: keyswap asks for none.
      if (/^application\/grpc/i.test(facts.contentType ?? '')) setHeader(parts.headers, 'grpc-accept-encoding', 'identity');
    } else if (toolFilter !== null) setHeader(parts.headers, 'accept-encoding', 'identity');
    // A WebSocket's handshake headers are written by the bridge's client, after any signature would be computed.
    if (to.kind === 'websocket' && verdict.injections.some((i) => i.sites.some((s) => s.render.kind === 'signed'))) throw new Refusal('signing_unsupported');
    // A signature authorises every header it signs: one naming another object to read must be allowed as that GET.
    checkNamedResources(ex, facts, verdict.injections);
    // Signatures last: they cover the request exactly as it goes upstream (its Accept-Encoding included).
    const signed = await signRequest(ex, req as IncomingMessage, parts, framing, verdict, values, nowMs);
    // An HTTP/2 agent's request goes upstream over HTTP/2 when the upstream offers it (gRPC needs it); opening the
    // session sends nothing of the request.
    const session = to.kind === 'response' && req instanceof Http2ServerRequest && target.scheme === 'https'
      ? await ex.snap.upstream.h2Session({ scheme: 'https', host: target.host, port: target.port, identity: ex.clientName ?? '' }).catch((err: Error) => { throw upstreamRefusal(err); })
      : null;
    // Pipelined requests go upstream in turn; one behind an answer that closed the connection goes nowhere.
    if (!(await ex.mayForward())) return;
    // The waits above (a request queued behind a slow answer, minting, a session) may span a reload: what goes
    // upstream must still be allowed by the configuration in force now, not only by the one it was decided under.
    const again = decisionStands(ex, facts, target, verdict);
    // A reload during the wait may have put `approve:` on a binding this request now goes by: it waits for that too.
    const unanswered = again === null ? [] : unapproved(again, approved);
    if (unanswered.length > 0) {
      await awaitApproval(ex, to, unanswered, framing, path, approved);
      const last = decisionStands(ex, facts, target, verdict);
      if (last !== null && unapproved(last, approved).length > 0) throw new Refusal('approval_timeout');
    }
    guardStillHolds(ex, target, guarded);
    // A destination that had no tool policy when this request came, and has one now (a reload during the wait):
    // its body, not read yet, is read and judged under the policy in force (a signer has already read it).
    const lateFilter = guarded === null && ex.current() !== ex.snap ? toolListFilter(ex.current(), target, ex.current) : null;
    if (lateFilter !== null) {
      if (signed.body !== null) throw new Refusal('signing_unsupported');
      guarded = await guardToolCalls(ex, target, req, framing, facts.headers, to.kind === 'websocket', ex.current());
    }
    // K5: every decision of this request is durable before the upstream request object even exists.
    await ex.audit([...decisionEvents(verdict.injections, verdict.declined), ...(guarded?.events ?? [])]);
    // The agent left while we waited: send nothing.
    if ((to.kind === 'response' ? isGone(to.res) : to.socket.destroyed) || req.socket.destroyed) return;
    // The use counts once the request is on a connection to the upstream (forward.ts); a WebSocket's handshake
    // counts as it goes to be opened. Past here the reservation is the forwarder's to commit or release.
    const reservation = use;
    const counted = reservation === null ? null : {
      commit: (): void => {
        const warning = reservation.commit();
        if (warning !== null && to.kind === 'response' && !to.res.headersSent) to.res.setHeader('keyswap-usage-warning', warning);
      },
      release: (): void => reservation.release(),
    };

    const bodyPlacements = placementsOf(verdict.bodyInjectors, values, nowMs);
    const scrubber = scrubberFor(ex.snap, target, scrubbed, values, nowMs, [...[...minted.values()].map((m) => ({ secretName: m.secret.name, value: m.value })), ...signed.signatures]);
    if (to.kind === 'websocket') {
      use = null;
      counted?.commit();
      const honeytokens = watchedHoneytokens(ex, verdict.bodyInjectors);
      openWebSocket(ex, target, to.req, to.socket, to.head, {
        path: queryAt < 0 ? parts.path : `${parts.path}?${parts.query}`,
        headers: parts.headers,
        scrubber,
        substitutions: [
          ...bodyPlacements.map((p) => ({ secretName: p.secret.name, placeholder: p.secret.placeholder, value: p.text })),
          ...honeytokens.map((s) => ({ secretName: s.name, placeholder: s.placeholder, value: null })),
        ],
        beforeSubstituting: async (names) => {
          stillEntitled(ex, facts, target, names.filter((n) => verdict.bodyInjectors.some((i) => i.secret.name === n)));
          // Each message a secret is written into is a use of its own (a honeytoken's placeholder is not a use).
          (await admitUse(ex, names.filter((n) => verdict.bodyInjectors.some((i) => i.secret.name === n && !i.secret.honeytoken)), target.client))?.commit();
          await auditBodyUse(ex, verdict.bodyInjectors, names, honeytokens);
        },
        idleMs: ex.snap.config.timeouts.tunnelIdleMs,
      });
      return;
    }
    const body = framing.kind === 'none' ? null : bodyRewriter(ex, verdict.bodyInjectors, bodyPlacements, (names) => stillEntitled(ex, facts, target, names));
    const outbound: Outbound = {
      path: queryAt < 0 ? parts.path : `${parts.path}?${parts.query}`,
      headers: parts.headers,
      source: signed.body !== null ? Readable.from([signed.body]) : guarded !== null ? Readable.from([guarded.bytes]) : null,
      // A substituted body changes length, so it goes out chunked; one only watched (honeytokens) keeps its framing.
      framing: verdict.bodyInjectors.length > 0 && body !== null ? { kind: 'chunked' } : signed.body !== null ? { kind: 'length', bytes: signed.body.length } : guarded !== null ? { kind: 'length', bytes: guarded.bytes.length } : framing,
      body,
      scrubber,
      wantsTrailers: raw.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'te' && raw[i + 1]?.trim().toLowerCase() === 'trailers'),
      use: counted,
      toolFilter: toolFilter ?? lateFilter,
    };
    use = null;
    if (session !== null && req instanceof Http2ServerRequest) forwardH2(ex, target, req, to.res, outbound, session);
    else forward(ex, target, req, to.res, outbound);
  } catch (err) {
    ex.refuse(err);
  } finally {
    use?.release();
    guarded?.release();
  }
}

/** The `usage:` quotas this request counts under: past a limit it is refused (429, Retry-After: the period's end). */
async function admitUse(ex: Exchange, secrets: readonly string[], client: ClientSpec | null): Promise<Reservation | null> {
  // No quota configured: nothing to count, nothing allocated on the request path.
  if (secrets.length === 0 || ex.snap.config.usage.length === 0) return null;
  const admission = await shared(ex.snap.usage.admit([...new Set(secrets)], client));
  if (admission.kind === 'exhausted') throw new Refusal('usage_limit_reached', { retryAfterSeconds: admission.retryAfterSeconds });
  return admission.reservation;
}

/**
 * A SigV4 signature covers the `x-amz-copy-source` it signs, and S3 then reads that object with the signer's rights:
 * each resource a signed request's headers name is decided as a GET of its own, and must be allowed to the same
 * secrets; one policy cannot place (an access point ARN) is refused.
 */
function checkNamedResources(ex: Exchange, facts: RequestFacts, injections: readonly Injection[]): void {
  const signers = injections.filter((i) => i.sites.some((s) => s.render.kind === 'signed' && s.render.signer.kind === 'sigv4'));
  if (signers.length === 0) return;
  const named = namedResources(facts.connectHost, facts.headers);
  if (named === 'unreadable') throw new Refusal('signing_scope_violation');
  for (const r of named) {
    const headers = facts.headers.map(([n, v]): HeaderPair => [n, n === 'host' ? r.host : v]);
    const read = decide({ ...facts, method: 'GET', connectHost: r.host, sni: facts.sni === null ? null : r.host, hostHeader: r.host, path: r.path, query: '', headers }, ex.snap.policy);
    if (read.kind === 'deny' || signers.some((s) => !read.injections.some((i) => i.secret === s.secret))) throw new Refusal('signing_scope_violation');
  }
}

/** The backend values of these secrets (composed ones: each part), from the cache; any failure refuses. */
async function fetchValues(snap: Snapshot, specs: readonly SecretSpec[], ifStored: readonly SecretSpec[] = []): Promise<Map<string, Secret>> {
  const names = [...new Set(specs.flatMap((s) => namesToFetch(s)))];
  const optional = [...new Set(ifStored.flatMap((s) => namesToFetch(s)))].filter((n) => !names.includes(n));
  try {
    const secrets = await Promise.all([
      ...names.map((n) => snap.secrets.get(n)),
      ...optional.map((n) => snap.secrets.get(n).catch((err: unknown) => { if (err instanceof SecretNotFound) return null; throw err; })),
    ]);
    return new Map([...names, ...optional].flatMap((n, i): [string, Secret][] => (secrets[i] ? [[n, secrets[i]]] : [])));
  } catch (err) {
    throw new Refusal('secret_unavailable', { cause: err });
  }
}


/** The text to place at each site an injection writes; reveal() happens here and nowhere else on the request path. */
function placementsOf(injections: readonly Injection[], values: ReadonlyMap<string, Secret>, nowMs: number, minted: MintedBySite = new Map()): Placement[] {
  return injections.flatMap(({ secret, sites }) => {
    const plain = new Map(namesToFetch(secret).map((n) => [n, values.get(n)?.reveal() ?? '']));
    return sites.filter((site) => site.render.kind !== 'signed').map((site): Placement => ({ secret, site, text: renderSecret(secret, site, plain, nowMs, minted.get(site)?.value.reveal() ?? null) }));
  });
}

type MintedBySite = ReadonlyMap<InjectSpec, { readonly secret: SecretSpec; readonly value: Secret }>;

/**
 * The credentials this request's minted sites need (OAuth2 access tokens, installation tokens, JWTs), from the
 * snapshot's mint service: cached, or exchanged now with the exchange audited before its result is used. Any
 * failure refuses the request with 503 and nothing sent.
 */
async function mintedCredentials(mint: MintService, injections: readonly Injection[], values: ReadonlyMap<string, Secret>): Promise<MintedBySite> {
  const out = new Map<InjectSpec, { readonly secret: SecretSpec; readonly value: Secret }>();
  for (const { secret, sites } of injections) {
    for (const site of sites) {
      if (site.render.kind !== 'minted') continue;
      const inputs = new Map(minterInputs(site.render.minter).map((n): [string, Secret] => [n, values.get(n) as Secret]));
      try {
        out.set(site, { secret, value: await mint.credential(secret.name, site.render.minter, inputs) });
      } catch (err) {
        throw err instanceof Refusal ? err : new Refusal(err instanceof SharedStateUnavailable ? 'shared_state_unavailable' : 'token_exchange_failed', { cause: err });
      }
    }
  }
  return out;
}

/**
 * The request body's rewriter: body injectors' placeholders are replaced by their secrets, and every
 * honeytoken's placeholder is watched for. Each secret's decision is made durable at its first occurrence,
 * before any byte of that chunk leaves (K5); a failure there aborts the upstream request mid-body. Null when
 * nothing in a body can matter, so ordinary bodies stream untouched.
 */
function bodyRewriter(ex: Exchange, injectors: readonly Injection[], rendered: readonly Placement[], entitled: (names: readonly string[]) => void): Transform | null {
  const honeytokens = watchedHoneytokens(ex, injectors);
  if (injectors.length === 0 && honeytokens.length === 0) return null;
  const subs: BodySubstitution[] = [
    ...rendered.map((p) => ({ secretName: p.secret.name, placeholder: p.secret.placeholder, value: p.text })),
    ...honeytokens.map((s) => ({ secretName: s.name, placeholder: s.placeholder, value: null })),
  ];
  const rewriter = createBodyRewriter(subs, async (names, firstSeen) => {
    // Asked at every write, not once at the start: a body can stream on after a reload removed its client or binding.
    entitled(names.filter((n) => injectors.some((i) => i.secret.name === n)));
    if (firstSeen.length > 0) await auditBodyUse(ex, injectors, firstSeen, honeytokens);
  });
  if (injectors.length > 0) boundUpload(rewriter, ex.snap.config.timeouts);
  return rewriter;
}

/**
 * A body a binding substitutes into may not be held open at will: with no byte for `upload_idle_seconds`, or still
 * arriving `upload_max_seconds` after it began, it is cut (408 before the response, a reset upstream either way).
 */
function boundUpload(body: Transform, timeouts: { readonly uploadIdleMs: number; readonly uploadMaxMs: number }): void {
  const cut = (): void => { body.destroy(new Refusal('upload_timeout')); };
  const idle = setTimeout(cut, timeouts.uploadIdleMs);
  const max = setTimeout(cut, timeouts.uploadMaxMs);
  idle.unref();
  max.unref();
  const stop = (): void => {
    clearTimeout(idle);
    clearTimeout(max);
  };
  // Progress is the agent's bytes arriving, read on the source piped in (a listener on the rewriter's own output
  // would set it flowing before its destination is piped).
  body.once('pipe', (source: NodeJS.ReadableStream) => source.on('data', () => idle.refresh()));
  body.once('finish', stop);
  body.once('close', stop);
}

/**
 * A WebSocket outlives the configuration it was decided under: before a message carries a secret, the client is
 * checked against the configuration in force now, and the handshake decided again under it. A client a reload
 * removed, expired or re-keyed, or a binding it dropped, ends the substitutions (the connection closes 1008).
 */
/**
 * A decision made before a wait, checked against the configuration in force after it: the destination still
 * admitted, the client still admitted, and every secret the request carries still allowed where it goes.
 */
type Carried = { readonly injections: readonly Injection[]; readonly bodyInjectors: readonly Injection[] };

function decisionStands(ex: Exchange, facts: RequestFacts, target: Target, verdict: Carried): Carried | null {
  if (ex.snap.operator.lockdown !== null && (verdict.injections.length > 0 || verdict.bodyInjectors.length > 0)) throw new Refusal('lockdown');
  const now = ex.current();
  if (now === ex.snap) return null;
  if (now.policy.unmatchedDestinationPolicy === 'deny' && !isBoundDestination(now.policy, target.host, target.port, target.scheme)) throw new Refusal('unbound_destination');
  const { current, isStale } = clientNow(now, target.client);
  if (isStale) throw new Refusal('proxy_auth_required');
  const again = decide({ ...facts, client: current }, now.policy);
  if (again.kind === 'deny') throw new Refusal(again.reason);
  const allowed = (list: readonly Injection[]): Set<string> => new Set(list.map((i) => i.secret.name));
  const header = allowed(again.injections);
  const body = allowed(again.bodyInjectors);
  if (verdict.injections.some((i) => !header.has(i.secret.name)) || verdict.bodyInjectors.some((i) => !body.has(i.secret.name))) throw new Refusal('unbound_destination');
  return again;
}

/** What this request carries, under the configuration in force, that a binding holds for approval and no operator approved. */
function unapproved(carried: Carried, approved: ReadonlySet<string>): Injection[] {
  return [...carried.injections, ...carried.bodyInjectors].filter((i) => i.secret.bindings[i.bindingIndex]?.approve && !approved.has(approvalKey(i)));
}

/**
 * A binding as approvals name it: by what it allows, not its place in the file (a reload that inserts a binding
 * before it must not carry an approval over to the one that now has its index).
 */
const approvalKey = (i: Injection): string => {
  const b = i.secret.bindings[i.bindingIndex];
  return JSON.stringify([i.secret.name, b?.host, b?.port, b?.subdomains, b?.methods, b?.paths, b?.allowPlaintext]);
};

function stillEntitled(ex: Exchange, facts: RequestFacts, target: Target, names: readonly string[]): void {
  if (names.length > 0 && ex.snap.operator.lockdown !== null) throw new Refusal('lockdown');
  const now = ex.current();
  if (now === ex.snap || names.length === 0) return;
  const { current, isStale } = clientNow(now, target.client);
  if (isStale) throw new Refusal('proxy_auth_required');
  const verdict = decide({ ...facts, client: current }, now.policy);
  if (verdict.kind === 'deny' || names.some((n) => !verdict.bodyInjectors.some((i) => i.secret.name === n))) throw new Refusal('unbound_destination');
}

/** The honeytokens whose placeholder a body (or WebSocket message) is watched for: any use of one is recorded. */
function watchedHoneytokens(ex: Exchange, injectors: readonly Injection[]): SecretSpec[] {
  return ex.snap.policy.hasHoneytokens ? ex.snap.policy.secrets.filter((s) => s.honeytoken && !injectors.some((i) => i.secret === s)) : [];
}

/**
 * A body site's first use in this request (a body chunk, a WebSocket message): counted against the binding's
 * `rate:` and made durable before the value leaves; over the rate, the body is cut before it does.
 */
async function auditBodyUse(ex: Exchange, injectors: readonly Injection[], names: readonly string[], honeytokens: readonly SecretSpec[] = []): Promise<void> {
  const injected = injectors.filter((i) => names.includes(i.secret.name));
  enforceRates(ex, injected, Date.now());
  const decoys = honeytokens.filter((s) => names.includes(s.name)).map((s): ExchangeEvent => ({ type: 'honeytoken_triggered', decision: 'denied', secret_name: s.name }));
  await ex.audit([...decisionEvents(injected, []), ...decoys]);
}

/** A request held for approval with a body says its length, and at most this: keyswap reads none of it while held. */
const MAX_HELD_BODY = 1024 * 1024;

/**
 * A binding's `approve:`: the request waits here, nothing of it sent or read past its head, until an operator
 * answers (each step audited, the request durable before it is shown), unless an approval with `remember` still
 * covers this client, binding and method. A body it does not declare the length of waits in the socket's own
 * buffers (flow control), so a held request costs keyswap no more than its head.
 */
async function awaitApproval(ex: Exchange, to: Delivery, carrying: readonly Injection[], framing: Framing, path: string, approved: Set<string>): Promise<void> {
  const gated = carrying.filter((i) => i.secret.bindings[i.bindingIndex]?.approve);
  if (gated.length === 0) return;
  const grant = (): void => { for (const i of gated) approved.add(approvalKey(i)); };
  const rules = gated.map((i) => i.secret.bindings[i.bindingIndex]?.approve as { readonly timeoutMs: number; readonly rememberMs: number });
  const secretNames = [...new Set(gated.map((i) => i.secret.name))];
  // The credential, not only the name: an approval remembered for a client is not one for a new token issued under its name.
  const client = ex.target?.client ?? null;
  const rememberKey = JSON.stringify([client?.name ?? null, client?.tokenSha256 ?? null, client?.spiffeId ?? null, ex.method, [...new Set(gated.map(approvalKey))].sort()]);
  const id = ex.id.slice(0, 8);
  const event = (step: 'requested' | 'granted' | 'denied' | 'expired', by: 'cli' | 'ui' | 'remembered' | 'agent_left' | null, rememberMs: number | null = null): ExchangeEvent =>
    ({ type: 'approval', approval_id: id, step, by, secret_names: secretNames, remember_s: rememberMs === null ? null : Math.round(rememberMs / 1000) });
  if (ex.snap.operator.remembered(rememberKey)) {
    await ex.audit([event('granted', 'remembered')]);
    grant();
    return;
  }
  if (framing.kind === 'length' && framing.bytes > MAX_HELD_BODY) throw new Refusal('approval_body_too_large');
  const account = accountOf(client);
  if (!ex.snap.operator.hasRoom(account)) throw new Refusal('approval_queue_full');
  await ex.audit([event('requested', null)]);
  const gone = new AbortController();
  const watched = to.kind === 'response' ? to.res : to.socket;
  const onGone = (): void => gone.abort();
  watched.once('close', onGone);
  try {
    const answer = await ex.snap.operator.hold({
      id, requestId: ex.id, client: ex.clientName, account, method: auditMethod(ex.method), host: ex.destination.host, port: ex.destination.port, path: operatorPath(path),
      secretNames, rememberKey, timeoutMs: Math.min(...rules.map((r) => r.timeoutMs)), rememberMs: Math.min(...rules.map((r) => r.rememberMs)),
    }, gone.signal);
    if (answer.kind === 'granted') {
      await ex.audit([event('granted', answer.by, answer.rememberMs)]);
      grant();
      return;
    }
    if (answer.kind === 'full') throw new Refusal('approval_queue_full');
    ex.note(event(answer.kind, answer.by));
    // A lockdown answers every held request: the agent is told it is the lockdown, not one operator's no.
    throw new Refusal(ex.snap.operator.lockdown !== null ? 'lockdown' : answer.kind === 'denied' ? 'approval_denied' : 'approval_timeout');
  } finally {
    watched.off('close', onGone);
  }
}

/** Binding `rate:` limits, per client, secret and binding: over the limit, the request is refused with 429. */
async function enforceRates(ex: Exchange, injections: readonly Injection[], nowMs: number): Promise<void> {
  for (const inj of injections) {
    const rate = inj.secret.bindings[inj.bindingIndex]?.rate;
    if (!rate) continue;
    const taken = await shared(ex.snap.limiter.take(`${accountOf(ex.target?.client ?? null) ?? ''}|${inj.secret.name}|${inj.bindingIndex}`, rate, nowMs));
    if (!taken.ok) throw new Refusal('rate_limited', { retryAfterSeconds: Math.max(1, Math.ceil(taken.retryAfterMs / 1000)) });
  }
}

/** An answer of what replicas share (shared_state): Redis unreachable refuses with 503, nothing sent. */
async function shared<T>(answer: T | Promise<T>): Promise<T> {
  try {
    return await answer;
  } catch (err) {
    throw err instanceof SharedStateUnavailable ? new Refusal('shared_state_unavailable', { cause: err }) : err;
  }
}

function decisionEvents(injections: readonly Injection[], declined: readonly Declined[]): ExchangeEvent[] {
  return [
    ...injections.map((i): ExchangeEvent => ({ type: 'inject_decision', decision: 'allowed', reason: 'binding_matched', secret_name: i.secret.name })),
    ...declined.map((d): ExchangeEvent => ({ type: 'inject_decision', decision: 'denied', reason: d.reason, secret_name: d.secret.name })),
    // A honeytoken's placeholder was used at all: the agent is reading what it should not (fsynced like the rest).
    ...injections.filter((i) => i.secret.honeytoken).map((i): ExchangeEvent => ({ type: 'honeytoken_triggered', decision: 'allowed', secret_name: i.secret.name })),
    ...declined.filter((d) => d.secret.honeytoken).map((d): ExchangeEvent => ({ type: 'honeytoken_triggered', decision: 'denied', secret_name: d.secret.name })),
  ];
}

