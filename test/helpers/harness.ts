import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCli } from './cli.js';
import { makeTempWorld } from './temp-world.js';
import { createTestCa, UPSTREAM_HOSTS, type TestCa } from './test-ca.js';
import { startUpstream, type Upstream } from './upstream.js';

export const PLACEHOLDER = 'sk-PLACEHOLDER-TEST-0123456789abcdef';

// Literal YAML, not built: reload and CA-scope tests edit this text in the config on disk.
export const DEFAULT_SECRETS = `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings:
      - { host: api.example.test, methods: [GET, POST], paths: ["/v1/**"] }
      - { host: untrusted.example.test }
      - { host: plain.example.test, allow_plaintext: true }
      - { host: api.example.test, port: 80 }
`;

export interface HarnessOptions {
  /** YAML for the `secrets:` block (indented two spaces). */
  readonly secrets?: string;
  /** Extra top-level YAML lines. */
  readonly top?: string;
  /** Extra environment for the keyswap process. */
  readonly env?: Readonly<Record<string, string>>;
  /** The `backend:` block (default: the env backend, with TEST_API_KEY as the canary). */
  readonly backend?: string;
  /** Backend values beyond TEST_API_KEY (which is always the canary). */
  readonly secretValues?: Readonly<Record<string, string>>;
  /** Wrap keyswap in `ulimit -f BLOCKS` (512-byte blocks) with the audit file pre-filled to `auditPrefillBytes`. */
  readonly fileSizeLimitBlocks?: number;
  readonly auditPrefillBytes?: number;
  /** The CA keyswap trusts for upstreams (default: a fresh one); pass one to issue certificates for extra servers. */
  readonly testCa?: TestCa;
  /** Extra `upstream.resolve` entries ("host:port": "127.0.0.1:port"). */
  readonly resolve?: Readonly<Record<string, string>>;
  /** Extra lines for the `upstream:` section (indented two spaces), e.g. a parent proxy. */
  readonly upstreamLines?: string;
  /** Extra arguments for `keyswap serve`. */
  readonly args?: readonly string[];
  /** Run keyswap under this umask (e.g. 0o000, to prove a file is created with its final mode, not the umask's). */
  readonly umask?: number;
}

export interface Harness {
  readonly dir: string;
  readonly proxyUrl: string;
  readonly proxyPort: number;
  /** keyswap's own CA (what agents trust). */
  readonly caPem: string;
  readonly caPath: string;
  /** The test upstream's CA (what keyswap trusts through upstream.extra_ca_file). */
  readonly testCaPem: string;
  readonly testCaPath: string;
  readonly canary: string;
  /** Every `upstream.resolve` entry of the config ("host:port" → "127.0.0.1:port"): for a parent proxy to resolve by. */
  readonly resolved: Readonly<Record<string, string>>;
  readonly upstream: Upstream;
  readonly plainUpstream: Upstream;
  readonly untrustedUpstream: Upstream;
  readonly child: ChildProcess;
  readonly auditPath: string;
  auditText(): string;
  auditRecords(): Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM and waits for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  close(): Promise<void>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const world = makeTempWorld('test');
  const dir = world.dir;
  const auditPath = path.join(dir, 'audit.jsonl');
  const testCa = opts.testCa ?? createTestCa();
  const untrustedCa = createTestCa('untrusted CA');
  const testCaPath = path.join(dir, 'test-ca.pem');
  writeFileSync(testCaPath, testCa.certPem);
  const upstream = await startUpstream({ tls: testCa.issue([...UPSTREAM_HOSTS, 'untrusted.example.test']), auditPath });
  const plainUpstream = await startUpstream({ tls: null, auditPath });
  const untrustedUpstream = await startUpstream({ tls: untrustedCa.issue(['untrusted.example.test']), auditPath });
  const canary = `real-secret-${randomBytes(12).toString('hex')}`;

  const https = `127.0.0.1:${upstream.port}`;
  const plain = `127.0.0.1:${plainUpstream.port}`;
  const resolved: Record<string, string> = {
    'api.example.test:443': https, 'other.example.test:443': https, 'unbound.example.test:443': https,
    'untrusted.example.test:443': `127.0.0.1:${untrustedUpstream.port}`, 'api.example.test:80': plain, 'plain.example.test:80': plain,
    'unbound.example.test:80': plain, ...opts.resolve,
  };
  const config = `version: 1
listen: 127.0.0.1:0
state_dir: ${dir}/state
audit: { path: ${auditPath} }
${opts.backend ?? 'backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }'}
upstream:
  extra_ca_file: ${testCaPath}
  connect_timeout_seconds: 5
${opts.upstreamLines ?? ''}
  resolve:
    "api.example.test:443": "${https}"
    "other.example.test:443": "${https}"
    "unbound.example.test:443": "${https}"
    "untrusted.example.test:443": "127.0.0.1:${untrustedUpstream.port}"
    "api.example.test:80": "${plain}"
    "plain.example.test:80": "${plain}"
    "unbound.example.test:80": "${plain}"
${Object.entries(opts.resolve ?? {}).map(([k, v]) => `    "${k}": "${v}"`).join('\n')}
${opts.top ?? ''}
secrets:${opts.secrets ?? DEFAULT_SECRETS}`;
  const configPath = path.join(dir, 'keyswap.yaml');
  writeFileSync(configPath, config);
  if (opts.auditPrefillBytes !== undefined) writeFileSync(auditPath, `${'#'.repeat(opts.auditPrefillBytes - 1)}\n`, { mode: 0o600 });

  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KEYSWAP_SECRET_TEST_API_KEY: canary };
  for (const [k, v] of Object.entries(opts.secretValues ?? {})) env[`KEYSWAP_SECRET_${k}`] = v;
  Object.assign(env, opts.env ?? {});
  const shellSetup = [
    ...(opts.umask === undefined ? [] : [`umask ${opts.umask.toString(8).padStart(3, '0')}`]),
    // RLIMIT_FSIZE makes writes past the limit fail with EFBIG: a real audit write failure. XFSZ is ignored so
    // the kernel's signal does not kill keyswap first (an ignored disposition survives exec).
    ...(opts.fileSizeLimitBlocks === undefined ? [] : [`trap '' XFSZ`, `ulimit -f ${opts.fileSizeLimitBlocks}`]),
  ];
  const keyswap = startCli(['serve', '--config', configPath, ...(opts.args ?? [])], {
    cwd: dir,
    env,
    ...(shellSetup.length === 0 ? {} : { via: ['sh', '-c', `${shellSetup.join('; ')}; exec "$0" "$@"`] }),
  });
  const child = keyswap.child;
  const port = await keyswap.listeningPort();
  const caPath = path.join(dir, 'state', 'ca.pem');
  const h: Harness = {
    dir,
    proxyUrl: `http://127.0.0.1:${port}`,
    proxyPort: port,
    caPem: readFileSync(caPath, 'utf8'),
    caPath,
    testCaPem: testCa.certPem,
    testCaPath,
    canary,
    resolved,
    upstream,
    plainUpstream,
    untrustedUpstream,
    child,
    auditPath,
    auditText: () => readFileSync(auditPath, 'utf8'),
    auditRecords: () =>
      readFileSync(auditPath, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return []; // a torn last line
          }
        }),
    stdout: keyswap.stdout,
    stderr: keyswap.stderr,
    stop: () => keyswap.stop(),
    async close() {
      await h.stop();
      await Promise.all([upstream.close(), plainUpstream.close(), untrustedUpstream.close()]);
      world.remove();
    },
  };
  return h;
}

/** K1: the canary must appear nowhere the agent or an operator could read it. */
export function findCanary(h: Harness, extra: readonly string[] = []): string[] {
  const encoded = [h.canary, Buffer.from(h.canary).toString('base64'), encodeURIComponent(h.canary)];
  const places: [string, string][] = [['stdout', h.stdout()], ['stderr', h.stderr()], ['audit', h.auditText()], ...extra.map((t, i) => [`extra[${i}]`, t] as [string, string])];
  return places.filter(([, text]) => encoded.some((e) => text.includes(e))).map(([name]) => name);
}

/** Polls until `check` is true or the bound runs out. */
export async function waitFor(check: () => boolean, ms = 5_000, stepMs = 20): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}
