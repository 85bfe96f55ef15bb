import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';

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

/** `export NAME='value'` lines, single-quoted for POSIX shells. */
export function exportLines(env: readonly (readonly [string, string])[]): string {
  return env.map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`).join('\n');
}

function isEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
