import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../atomic-file.js';
import type { BackendSpec, Config } from '../config/index.js';

export interface AgentEnvInput {
  readonly proxyUrl: string;
  /** keyswap's CA alone (Node adds it to its own roots). */
  readonly caPath: string;
  /** System roots plus keyswap's CA: OpenSSL-style variables replace the trust store, so they need both. */
  readonly bundlePath: string;
  readonly secrets: Config['secrets'];
  /** The environment the agent would otherwise have: NODE_OPTIONS and PHP_INI_SCAN_DIR are extended, not replaced. */
  readonly inherited?: Readonly<Record<string, string | undefined>>;
}

/** The preload that makes Node 20's fetch() and node:https use the proxy (src/agent/node-preload.cts). */
const NODE_PRELOAD = fileURLToPath(new URL('../agent/node-preload.cjs', import.meta.url));

/**
 * Variables that replace a runtime's whole trust store with the file they name, so they get the bundle (system
 * roots + keyswap's CA): OpenSSL and Go (SSL_CERT_FILE), Python requests, curl, git, Perl LWP (PERL_LWP_SSL_CA_FILE;
 * HTTPS_CA_FILE for its older Crypt::SSLeay), the AWS SDKs and CLI, httplib2, Nix-built programs, the gcloud
 * CLI, gRPC's C core, pip and cargo. An agent's base environment often points some of them at the system bundle,
 * which would leave keyswap's CA out: keyswap's value wins.
 */
export const BUNDLE_VARIABLES = [
  'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PERL_LWP_SSL_CA_FILE', 'HTTPS_CA_FILE',
  'AWS_CA_BUNDLE', 'HTTPLIB2_CA_CERTS', 'NIX_SSL_CERT_FILE', 'CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE',
  'GRPC_DEFAULT_SSL_ROOTS_FILE_PATH', 'PIP_CERT', 'CARGO_HTTP_CAINFO',
] as const;

/**
 * Runtimes that read no CA variable, only a config file of their own: wget (the GnuTLS build ignores
 * SSL_CERT_FILE; it reads WGETRC) and PHP (curl.cainfo and openssl.cafile, from an ini file in
 * PHP_INI_SCAN_DIR). keyswap writes both beside the bundle.
 */
function agentConfigFiles(bundlePath: string): { readonly wgetrc: string; readonly phpIniDir: string } {
  const dir = path.join(path.dirname(bundlePath), 'agent');
  return { wgetrc: path.join(dir, 'wgetrc'), phpIniDir: path.join(dir, 'php') };
}

export async function writeAgentConfigFiles(bundlePath: string): Promise<void> {
  const { wgetrc, phpIniDir } = agentConfigFiles(bundlePath);
  await mkdir(phpIniDir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(wgetrc, `# written by keyswap: wget trusts the system roots and keyswap's CA\nca_certificate = ${bundlePath}\n`, 0o644);
  await writeFileAtomic(path.join(phpIniDir, 'keyswap.ini'), `; written by keyswap: PHP's curl and streams trust the system roots and keyswap's CA\ncurl.cainfo = "${bundlePath}"\nopenssl.cafile = "${bundlePath}"\n`, 0o644);
}

/**
 * The environment an agent needs: every spelling of the proxy variables, the CA for each runtime, the Node
 * preload, and the placeholders. NO_PROXY keeps loopback direct and nothing else, so no API call slips past
 * keyswap (and base-URL mode, http://127.0.0.1:…/p/<route>/, is reached directly).
 */
export function agentEnvironment(input: AgentEnvInput): [string, string][] {
  const inherited = input.inherited ?? {};
  const out: [string, string][] = [];
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) out.push([name, input.proxyUrl]);
  out.push(['NO_PROXY', 'localhost,127.0.0.1,::1'], ['no_proxy', 'localhost,127.0.0.1,::1']);
  out.push(['NODE_EXTRA_CA_CERTS', input.caPath]);
  for (const name of BUNDLE_VARIABLES) out.push([name, input.bundlePath]);
  const files = agentConfigFiles(input.bundlePath);
  // wget reads one user file: an agent's own WGETRC is kept (agentEnvironmentNotes says what to add to it).
  if (inherited.WGETRC === undefined) out.push(['WGETRC', files.wgetrc]);
  // A leading or joining ':' keeps PHP's compiled-in scan directory and any the agent already had.
  const phpDirs = inherited.PHP_INI_SCAN_DIR ?? '';
  out.push(['PHP_INI_SCAN_DIR', phpDirs.split(':').includes(files.phpIniDir) ? phpDirs : `${phpDirs}:${files.phpIniDir}`]);
  // Node ≥ 24 (and 22.21) honour the proxy variables themselves with this; Node 20 needs the preload.
  out.push(['NODE_USE_ENV_PROXY', '1']);
  const preload = `--require=${JSON.stringify(NODE_PRELOAD)}`;
  const existing = inherited.NODE_OPTIONS ?? '';
  out.push(['NODE_OPTIONS', existing.includes(NODE_PRELOAD) ? existing : `${existing} ${preload}`.trim()]);
  for (const s of input.secrets) if (isEnvName(s.name)) out.push([s.name, s.placeholder]);
  return out;
}

/** What keyswap could not set for the agent, in sentences for its stderr. */
export function agentEnvironmentNotes(input: AgentEnvInput): string[] {
  const wgetrc = input.inherited?.WGETRC;
  if (wgetrc === undefined || wgetrc === agentConfigFiles(input.bundlePath).wgetrc) return [];
  return [`WGETRC is set (${wgetrc}), so wget reads that file, not keyswap's: add to it the line: ca_certificate = ${input.bundlePath}`];
}

/** What the AWS SDK's credential chain reads from the environment: keys, and what buys a role's credentials. */
const AWS_CREDENTIALS = [
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_PROFILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE',
];

/** Where Google's Application Default Credentials find a key: keyswap's, never the agent's. */
const GCP_CREDENTIALS = ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_CONFIG'];

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
export function backendMaterialNames(env: Readonly<Record<string, string | undefined>>, config: Pick<Config, 'backend' | 'backends'>): string[] {
  const specs: BackendSpec[] = [config.backend, ...config.backends.values()];
  const prefixes = [DEFAULT_SECRET_PREFIX, ...specs.flatMap((b) => (b.type === 'env' ? [b.prefix] : []))];
  // The credentials an AWS backend signs with are keyswap's, never the agent's.
  const aws = [
    ...(specs.some((b) => b.type === 'aws_secrets_manager' || (b.type === 'file' && b.keyKms?.startsWith('aws_kms://'))) ? AWS_CREDENTIALS : []),
    ...(specs.some((b) => b.type === 'gcp_secret_manager' || (b.type === 'file' && b.keyKms?.startsWith('gcp_kms://'))) ? GCP_CREDENTIALS : []),
  ];
  return Object.keys(env).filter(
    (name) =>
      env[name] !== undefined &&
      (prefixes.some((p) => name.startsWith(p)) ||
        name === 'BWS_ACCESS_TOKEN' ||
        aws.includes(name) ||
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
