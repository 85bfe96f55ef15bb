import { bindingsFor, METHOD_OVERRIDE_HEADERS, scrubbedSecretsOf, type CompiledBinding, type CompiledPolicy } from './compile.js';
import { firstDuplicate, isAmbiguousPath, isIpLiteral, parseAuthority, queryPairs } from '../wire/index.js';
import { matchPathGlob } from './path-glob.js';
import { scanPlaceholders, type Sighting } from './scan.js';
import type { Declined, DeclineReason, Injection, RequestFacts, SiteKey, Verdict } from './verdict.js';
import { siteKey, type SecretSpec } from '../config/index.js';

/**
 * The whole policy, as a pure function of the request's facts and the compiled config: no I/O, no clock.
 * `keyswap explain` calls it too. Order matters: the destination check (K3) comes before any placeholder is
 * considered, so a request aimed somewhere other than its connection never gets as far as a secret.
 */
export function decide(facts: RequestFacts, policy: CompiledPolicy): Verdict {
  const destination = checkDestination(facts);
  if (destination !== null) return { kind: 'deny', reason: destination };
  // One reading of the wire: a header that policy reads must not be there twice for the upstream to read otherwise.
  if (firstDuplicate(facts.headers, policy.singletonHeaders) !== null) return { kind: 'deny', reason: 'bad_request' };

  const candidates = bindingsFor(policy, facts.connectHost, facts.connectPort, facts.scheme);
  const methods = methodsOf(facts);
  const bodyInjectors = bodyInjectorsFor(candidates, facts, methods);
  const scrubbed = scrubbedSecretsOf(candidates, facts.scheme === 'https' ? policy.mintedAt.get(`${facts.connectHost}:${facts.connectPort}`) : undefined);
  const sightings = scanPlaceholders(facts, policy);
  if (sightings.length === 0) return { kind: 'forward', injections: [], declined: [], bodyInjectors, scrubbed };

  const bySecret = new Map<SecretSpec, Set<SiteKey>>();
  for (const s of sightings) {
    const sites = bySecret.get(s.secret) ?? new Set<SiteKey>();
    sites.add(s.site);
    bySecret.set(s.secret, sites);
  }

  const injections: Injection[] = [];
  const declined: Declined[] = [];
  for (const [secret, sites] of bySecret) {
    const outcome = judge(secret, sites, candidates, facts, methods);
    if (outcome.kind === 'declined') declined.push({ secret, reason: outcome.reason });
    else injections.push(outcome.injection);
  }

  if (hasCompetingPlaceholders(injections, sightings)) return { kind: 'deny', reason: 'ambiguous_placeholder' };
  return { kind: 'forward', injections, declined, bodyInjectors, scrubbed };
}

/**
 * Body injectors whose binding covers this request (client, host, method, path, plaintext) and whose content
 * type matches. Which of them actually occur is only known as the body streams; the pipeline audits each one
 * before its first substituted byte leaves.
 */
function bodyInjectorsFor(candidates: readonly CompiledBinding[], facts: RequestFacts, methods: readonly string[]): Injection[] {
  const out: Injection[] = [];
  const bodySite = facts.isWebSocket === true ? 'websocket_message' : 'body';
  for (const c of candidates) {
    const inject = c.secret.sites.find((s) => s.type === bodySite);
    if (inject === undefined) continue;
    // One per secret: the first binding in scope, unless a later one holds for approval (as judge() chooses).
    const at = out.findIndex((i) => i.secret === c.secret);
    if (at >= 0 && (c.binding.approve === null || c.secret.bindings[(out[at] as Injection).bindingIndex]?.approve)) continue;
    if (facts.client !== null && !facts.client.secrets.has(c.secret.name)) continue;
    if (!isInScope(c, facts, methods) || (facts.scheme === 'http' && !c.binding.allowPlaintext)) continue;
    if (inject.type === 'body' && inject.contentType !== null && inject.contentType !== facts.contentType) continue;
    const injection = { secret: c.secret, bindingIndex: c.index, sites: [inject] };
    if (at >= 0) out[at] = injection;
    else out.push(injection);
  }
  return out;
}

function judge(
  secret: SecretSpec,
  sites: ReadonlySet<SiteKey>,
  candidates: readonly CompiledBinding[],
  facts: RequestFacts,
  methods: readonly string[],
): { readonly kind: 'injected'; readonly injection: Injection } | { readonly kind: 'declined'; readonly reason: DeclineReason } {
  const decline = (reason: DeclineReason) => ({ kind: 'declined', reason }) as const;
  if (facts.client !== null && !facts.client.secrets.has(secret.name)) return decline('client_not_allowed');
  const own = candidates.filter((c) => c.secret === secret);
  if (own.length === 0) return decline('destination_not_in_binding');
  const inScope = own.filter((c) => isInScope(c, facts, methods));
  if (inScope.length === 0) return decline('binding_scope_violation');
  const allowed = facts.scheme === 'https' ? inScope : inScope.filter((c) => c.binding.allowPlaintext);
  // Of several bindings that allow the request, one that holds it for approval governs: approval cannot be
  // skipped by a broader binding listed first.
  const first = allowed.find((c) => c.binding.approve !== null) ?? allowed[0];
  if (first === undefined) return decline('plaintext_not_allowed');
  // K4: a placeholder outside its sites travels verbatim; only a site named in config ever receives the secret.
  const found = secret.sites.filter((s) => sites.has(siteKey(s)));
  if (found.length === 0) return decline('site_violation');
  return { kind: 'injected', injection: { secret, bindingIndex: first.index, sites: found } };
}

function isInScope(c: CompiledBinding, facts: RequestFacts, methods: readonly string[]): boolean {
  if (c.methods && !methods.every((m) => c.methods?.has(m))) return false;
  if (c.paths) {
    // A path override header (IIS, Symfony) makes the upstream act on another path than the one matched here.
    if (isAmbiguousPath(facts.path) || facts.headers.some(([n]) => PATH_OVERRIDE_HEADERS.has(n))) return false;
    if (!c.paths.some((g) => matchPathGlob(g, facts.path))) return false;
  }
  return true;
}

const PATH_OVERRIDE_HEADERS: ReadonlySet<string> = new Set(['x-original-url', 'x-rewrite-url', 'x-override-url']);

/**
 * The request's method and every method an override asks a framework to act as (`X-HTTP-Method-Override: DELETE`
 * on a POST is a DELETE to Rails, Express's method-override, Laravel and many gateways). A binding's method scope
 * must cover them all, or a GET-only credential deletes.
 */
function methodsOf(facts: RequestFacts): string[] {
  const out = [facts.method];
  for (const [name, value] of facts.headers) if (METHOD_OVERRIDE_HEADERS.has(name)) out.push(value.trim().toUpperCase());
  if (/method/i.test(facts.query) || facts.query.includes('%')) {
    for (const [name, value] of queryPairs(facts.query)) if (isMethodParam(name)) out.push(value.trim().toUpperCase());
  }
  return out;
}

/** `_method` as frameworks read it: PHP turns `.` and spaces into `_`, and `_method[]` is still `_method`. */
function isMethodParam(name: string): boolean {
  return name.toLowerCase().replace(/[. ]/g, '_').replace(/\[\]$/, '') === '_method';
}

/** Two different placeholders in a site an injection will write: which one the agent meant is unknowable. */
function hasCompetingPlaceholders(injections: readonly Injection[], sightings: readonly Sighting[]): boolean {
  for (const inj of injections) {
    for (const site of inj.sites.map(siteKey)) {
      const claimants = new Set(sightings.filter((s) => s.site === site).map((s) => s.secret));
      if (claimants.size > 1) return true;
    }
  }
  return false;
}

/**
 * K3: the destination is the CONNECT target (or the absolute URL's authority); the Host header and the SNI must
 * name the same host, or the request is refused before any policy is read.
 */
function checkDestination(facts: RequestFacts): 'bad_request' | 'sni_host_mismatch' | null {
  if (facts.hostHeader === undefined) return 'bad_request';
  const host = parseAuthority(facts.hostHeader);
  if (host === null) return 'bad_request';
  const defaultPort = facts.scheme === 'https' ? 443 : 80;
  if (host.host !== facts.connectHost || (host.port ?? defaultPort) !== facts.connectPort) return 'sni_host_mismatch';
  if (facts.scheme === 'https') {
    const sni = facts.sni === null ? null : facts.sni.toLowerCase().replace(/\.$/, '');
    // Clients send no SNI for IP literals; for a name, a missing or different SNI means the TLS session was
    // negotiated for something other than the destination.
    if (sni === null ? !isIpLiteral(facts.connectHost) : sni !== facts.connectHost) return 'sni_host_mismatch';
  }
  return null;
}
