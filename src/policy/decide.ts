import { bindingsFor, siteKeyOf, type CompiledBinding, type CompiledPolicy } from './compile.js';
import { parseAuthority, isIpLiteral } from './host.js';
import { isAmbiguousPath, matchPathGlob } from './path-glob.js';
import { scanPlaceholders, type Sighting } from './scan.js';
import type { Declined, DeclineReason, Injection, RequestFacts, SiteKey, Verdict } from './verdict.js';
import type { SecretSpec } from '../config/index.js';

/**
 * The whole policy, as a pure function of the request's facts and the compiled config: no I/O, no clock.
 * `keyswap explain` calls it too. Order matters: the destination check (K3) comes before any placeholder is
 * considered, so a request aimed somewhere other than its connection never gets as far as a secret.
 */
export function decide(facts: RequestFacts, policy: CompiledPolicy): Verdict {
  const destination = checkDestination(facts);
  if (destination !== null) return { kind: 'deny', reason: destination };

  const candidates = bindingsFor(policy, facts.connectHost, facts.connectPort, facts.scheme);
  const bodyInjectors = bodyInjectorsFor(candidates, facts);
  const sightings = scanPlaceholders(facts, policy);
  if (sightings.length === 0) return { kind: 'forward', injections: [], declined: [], bodyInjectors };

  const bySecret = new Map<SecretSpec, Set<SiteKey>>();
  for (const s of sightings) {
    const sites = bySecret.get(s.secret) ?? new Set<SiteKey>();
    sites.add(s.site);
    bySecret.set(s.secret, sites);
  }

  const injections: Injection[] = [];
  const declined: Declined[] = [];
  for (const [secret, sites] of bySecret) {
    const outcome = judge(secret, sites, candidates, facts);
    if (typeof outcome === 'string') declined.push({ secret, reason: outcome });
    else injections.push(outcome);
  }

  if (hasCompetingPlaceholders(injections, sightings)) return { kind: 'deny', reason: 'ambiguous_placeholder' };
  return { kind: 'forward', injections, declined, bodyInjectors };
}

/**
 * Body injectors whose binding covers this request (client, host, method, path, plaintext) and whose content
 * type matches. Which of them actually occur is only known as the body streams; the pipeline audits each one
 * before its first substituted byte leaves.
 */
function bodyInjectorsFor(candidates: readonly CompiledBinding[], facts: RequestFacts): Injection[] {
  const out: Injection[] = [];
  for (const c of candidates) {
    const inject = c.secret.inject;
    if (inject.type !== 'body' || out.some((i) => i.secret === c.secret)) continue;
    if (facts.client !== null && !facts.client.secrets.has(c.secret.name)) continue;
    if (!isInScope(c, facts) || (facts.scheme === 'http' && !c.binding.allowPlaintext)) continue;
    if (inject.contentType !== null && inject.contentType !== facts.contentType) continue;
    out.push({ secret: c.secret, bindingIndex: c.index });
  }
  return out;
}

function judge(
  secret: SecretSpec,
  sites: ReadonlySet<SiteKey>,
  candidates: readonly CompiledBinding[],
  facts: RequestFacts,
): Injection | DeclineReason {
  if (facts.client !== null && !facts.client.secrets.has(secret.name)) return 'client_not_allowed';
  const own = candidates.filter((c) => c.secret === secret);
  if (own.length === 0) return 'destination_not_in_binding';
  const inScope = own.filter((c) => isInScope(c, facts));
  if (inScope.length === 0) return 'binding_scope_violation';
  const allowed = facts.scheme === 'https' ? inScope : inScope.filter((c) => c.binding.allowPlaintext);
  const first = allowed[0];
  if (first === undefined) return 'plaintext_not_allowed';
  // K4: a placeholder outside its site travels verbatim; only the site named in config ever receives the secret.
  if (!sites.has(siteKeyOf(secret))) return 'site_violation';
  return { secret, bindingIndex: first.index };
}

function isInScope(c: CompiledBinding, facts: RequestFacts): boolean {
  if (c.methods && !c.methods.has(facts.method)) return false;
  if (c.paths) {
    if (isAmbiguousPath(facts.path)) return false;
    if (!c.paths.some((g) => matchPathGlob(g, facts.path))) return false;
  }
  return true;
}

/** Two different placeholders in the site one injection will write: which one the agent meant is unknowable. */
function hasCompetingPlaceholders(injections: readonly Injection[], sightings: readonly Sighting[]): boolean {
  for (const inj of injections) {
    const site = siteKeyOf(inj.secret);
    const claimants = new Set(sightings.filter((s) => s.site === site).map((s) => s.secret));
    if (claimants.size > 1) return true;
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
