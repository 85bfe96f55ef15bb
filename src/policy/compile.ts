import { minterEndpoint, type Binding, type Config, type SecretSpec } from '../config/index.js';
import { compilePathGlob, type PathGlob } from './path-glob.js';

/** Every placeholder contains this marker (a load-time rule), so text without it is skipped at once. */
export const PLACEHOLDER_MARKER = 'PLACEHOLDER';

export interface CompiledBinding {
  readonly secret: SecretSpec;
  readonly index: number;
  readonly binding: Binding;
  readonly methods: ReadonlySet<string> | null;
  readonly paths: readonly PathGlob[] | null;
}

interface WildcardEntry {
  /** `.example.com` for `*.example.com`. */
  readonly suffix: string;
  readonly subdomains: ReadonlySet<string> | null;
  readonly entry: CompiledBinding;
}

/** The config's bindings indexed for per-request lookups; built once per config load, never per request. */
export interface CompiledPolicy {
  readonly secrets: readonly SecretSpec[];
  readonly byPlaceholder: ReadonlyMap<string, SecretSpec>;
  readonly exact: ReadonlyMap<string, readonly CompiledBinding[]>;
  readonly wildcards: readonly WildcardEntry[];
  readonly unmatchedDestinationPolicy: Config['unmatchedDestinationPolicy'];
  readonly tlsTermination: Config['tlsTermination'];
  /** Headers that policy reads, so a request may carry each at most once (wire/firstDuplicate). */
  readonly singletonHeaders: ReadonlySet<string>;
  readonly hasHoneytokens: boolean;
  /** Some binding has `mcp: { tools }`: requests to its destination have their JSON-RPC read (mcp-tools.ts). */
  readonly hasMcpTools: boolean;
  /**
   * Per `host:port`, the secrets whose minter exchanges there (a token endpoint, GitHub's API): what keyswap sends
   * there is scrubbed from its responses whether or not a binding names it, and after a restart as before.
   */
  readonly mintedAt: ReadonlyMap<string, readonly SecretSpec[]>;
}

/** Headers that tell a framework to treat a request as another method; the scope check counts them. */
export const METHOD_OVERRIDE_HEADERS: ReadonlySet<string> = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** Headers every request may carry at most once: framing, destination, the common credential sites, overrides. */
const ALWAYS_SINGLE = ['host', 'content-length', 'transfer-encoding', 'content-type', 'authorization', 'x-api-key', ...METHOD_OVERRIDE_HEADERS];

export function compilePolicy(config: Pick<Config, 'secrets' | 'unmatchedDestinationPolicy' | 'tlsTermination'>): CompiledPolicy {
  const exact = new Map<string, CompiledBinding[]>();
  const wildcards: WildcardEntry[] = [];
  const byPlaceholder = new Map<string, SecretSpec>();
  for (const secret of config.secrets) {
    byPlaceholder.set(secret.placeholder, secret);
    secret.bindings.forEach((binding, index) => {
      const entry: CompiledBinding = {
        secret,
        index,
        binding,
        methods: binding.methods ? new Set(binding.methods) : null,
        paths: binding.paths ? binding.paths.map(compilePathGlob) : null,
      };
      if (binding.host.startsWith('*.')) {
        wildcards.push({
          suffix: binding.host.slice(1),
          subdomains: binding.subdomains ? new Set(binding.subdomains) : null,
          entry,
        });
      } else {
        const list = exact.get(binding.host) ?? [];
        list.push(entry);
        exact.set(binding.host, list);
      }
    });
  }
  const mintedAt = new Map<string, SecretSpec[]>();
  for (const secret of config.secrets) {
    for (const site of secret.sites) {
      if (site.render.kind !== 'minted') continue;
      const url = minterEndpoint(site.render.minter);
      if (url === null) continue;
      const key = `${url.hostname.replace(/^\[|\]$/g, '').toLowerCase()}:${url.port === '' ? 443 : Number(url.port)}`;
      const list = mintedAt.get(key) ?? [];
      if (!list.includes(secret)) list.push(secret);
      mintedAt.set(key, list);
    }
  }
  const singletonHeaders = new Set(ALWAYS_SINGLE);
  for (const secret of config.secrets) for (const site of secret.sites) if (site.type === 'header') singletonHeaders.add(site.header);
  return {
    secrets: config.secrets,
    byPlaceholder,
    exact,
    wildcards,
    unmatchedDestinationPolicy: config.unmatchedDestinationPolicy,
    tlsTermination: config.tlsTermination,
    singletonHeaders,
    hasHoneytokens: config.secrets.some((s) => s.honeytoken),
    hasMcpTools: config.secrets.some((s) => s.bindings.some((b) => b.mcp !== null)),
    mintedAt,
  };
}

/** Bindings naming this host and port for this scheme (port null in a binding means the scheme's default). */
export function bindingsFor(policy: CompiledPolicy, host: string, port: number, scheme: 'https' | 'http'): CompiledBinding[] {
  const out: CompiledBinding[] = [];
  const defaultPort = scheme === 'https' ? 443 : 80;
  const take = (e: CompiledBinding): void => {
    if ((e.binding.port ?? defaultPort) === port) out.push(e);
  };
  for (const e of policy.exact.get(host) ?? []) take(e);
  for (const w of policy.wildcards) {
    if (!host.endsWith(w.suffix)) continue;
    const label = host.slice(0, -w.suffix.length);
    // One label only: `*.example.com` covers `a.example.com`, never `a.b.example.com`.
    if (label === '' || label.includes('.')) continue;
    if (w.subdomains && !w.subdomains.has(label)) continue;
    take(w.entry);
  }
  return out;
}

/** Whether any binding names this destination: the CONNECT router's question under `tls_termination: bound`. */
export function isBoundDestination(policy: CompiledPolicy, host: string, port: number, scheme: 'https' | 'http'): boolean {
  return bindingsFor(policy, host, port, scheme).length > 0;
}

/**
 * The secrets whose echoes are scrubbed from every response of a destination, from its bindings: all secrets
 * bound to it (with `response_scrub` on), whether or not this request injected one, since an earlier request may
 * have stored a secret upstream for a later plain GET to read back. Honeytokens too: one bound and injected has a
 * value, and its echo is as much a leak as any secret's (one with no value in the backend has nothing to find).
 */
export function scrubbedSecretsOf(candidates: readonly CompiledBinding[], mintedHere: readonly SecretSpec[] = []): SecretSpec[] {
  const out: SecretSpec[] = [];
  for (const c of candidates) {
    if (c.secret.responseScrub !== 'off' && !out.includes(c.secret)) out.push(c.secret);
  }
  // A token endpoint reached as a destination: the minter's inputs (client secret, refresh token, keys) went there.
  for (const s of mintedHere) if (!out.includes(s)) out.push(s);
  return out;
}

/**
 * The name on the certificate keyswap presents for a decrypted host: a wildcard binding's own pattern when only
 * a wildcard names the host, so every subdomain shares one leaf and a new name costs no mint on the event loop.
 */
export function leafNameFor(policy: CompiledPolicy, host: string): string {
  if (policy.exact.has(host)) return host;
  for (const w of policy.wildcards) {
    if (!host.endsWith(w.suffix)) continue;
    const label = host.slice(0, -w.suffix.length);
    if (label !== '' && !label.includes('.')) return `*${w.suffix}`;
  }
  return host;
}
