import { fileURLToPath } from 'node:url';
import type { BackendSpec, Config } from '../config/index.js';

export interface AgentEnvInput {
  readonly proxyUrl: string;
  /** keyswap's CA alone (Node adds it to its own roots). */
  readonly caPath: string;
  /** System roots plus keyswap's CA: OpenSSL-style variables replace the trust store, so they need both. */
  readonly bundlePath: string;
  readonly secrets: Config['secrets'];
  /** The NODE_OPTIONS the agent would otherwise have; the preload is appended to it. */
  readonly nodeOptions?: string | undefined;
}

/** The preload that makes Node 20's global fetch() use the proxy (src/agent/node-preload.cts). */
export const NODE_PRELOAD = fileURLToPath(new URL('../agent/node-preload.cjs', import.meta.url));

/**
 * The environment an agent needs: every spelling of the proxy variables, the CA for each runtime, the Node
 * preload, and the placeholders. NO_PROXY keeps loopback direct and nothing else, so no API call slips past
 * keyswap (and base-URL mode, http://127.0.0.1:…/p/<route>/, is reached directly).
 */
export function agentEnvironment(input: AgentEnvInput): [string, string][] {
  const out: [string, string][] = [];
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) out.push([name, input.proxyUrl]);
  out.push(['NO_PROXY', 'localhost,127.0.0.1,::1'], ['no_proxy', 'localhost,127.0.0.1,::1']);
  out.push(['NODE_EXTRA_CA_CERTS', input.caPath]);
  for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) out.push([name, input.bundlePath]);
  // Node ≥ 24 (and 22.21) honour the proxy variables themselves with this; Node 20 needs the preload.
  out.push(['NODE_USE_ENV_PROXY', '1']);
  const preload = `--require=${JSON.stringify(NODE_PRELOAD)}`;
  const existing = input.nodeOptions ?? '';
  out.push(['NODE_OPTIONS', existing.includes(NODE_PRELOAD) ? existing : `${existing} ${preload}`.trim()]);
  for (const s of input.secrets) if (isEnvName(s.name)) out.push([s.name, s.placeholder]);
  return out;
}

/** The env backend's default prefix, stripped whatever the configured backend (a shell may serve another keyswap). */
const DEFAULT_SECRET_PREFIX = 'KEYSWAP_SECRET_';

/**
 * The names in `env` that hold backend material, which the agent must never inherit: the secrets the env backend
 * reads (its prefix, and always the default one), what the backends read to unlock a store or a vault
 * (BWS_ACCESS_TOKEN, KEYSWAP_PASSPHRASE_FILE), and CREDENTIALS_DIRECTORY, systemd's directory of keyswap's
 * decrypted credentials (the store key, credential-backend secrets): the agent has no use for it, and keeping it
 * would hand the agent the path. Also any KEYSWAP_PASSPHRASE… and KEYSWAP_…KEY… name: no keyswap variable is meant
 * for an agent, and these are the spellings a store key or passphrase would take. Names only: values are never read.
 */
export function backendMaterialNames(env: Readonly<Record<string, string | undefined>>, backend: BackendSpec): string[] {
  const prefixes = backend.type === 'env' ? [DEFAULT_SECRET_PREFIX, backend.prefix] : [DEFAULT_SECRET_PREFIX];
  return Object.keys(env).filter(
    (name) =>
      env[name] !== undefined &&
      (prefixes.some((p) => name.startsWith(p)) ||
        name === 'BWS_ACCESS_TOKEN' ||
        name === 'CREDENTIALS_DIRECTORY' ||
        name.startsWith('KEYSWAP_PASSPHRASE') ||
        /^KEYSWAP_.*KEY/.test(name)),
  );
}

/** `export NAME='value'` lines, single-quoted for POSIX shells. */
export function exportLines(env: readonly (readonly [string, string])[]): string {
  return env.map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`).join('\n');
}

function isEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
