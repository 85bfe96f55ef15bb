import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCli } from './cli.js';
import { AuditTail, startRecordingUpstream, type RecordingUpstream } from './recording-upstream.js';
import { makeTempWorld } from './temp-world.js';
import { createTestCa } from './test-ca.js';

/**
 * A variant of harness.ts for the generative no-leak test: one live `keyswap serve` (dist/) whose bound hosts
 * all lead to recording upstreams, seven secrets (one per injection site, plus one only ever stored upstream),
 * and two clients with different secret lists. Every test host is mapped through upstream.resolve and every
 * connection goes to 127.0.0.1 by address: nothing does a DNS lookup.
 */

export const HTTPS_HOST = 'api.example.test';
export const PLAIN_HOST = 'plain.example.test';

export type SecretName = 'A_KEY' | 'B_KEY' | 'C_KEY' | 'D_KEY' | 'E_KEY' | 'F_KEY' | 'G_KEY';
export const SECRET_NAMES: readonly SecretName[] = ['A_KEY', 'B_KEY', 'C_KEY', 'D_KEY', 'E_KEY', 'F_KEY', 'G_KEY'];

export const PLACEHOLDERS: Readonly<Record<SecretName, string>> = {
  A_KEY: 'sk-a-PLACEHOLDER-0123456789abcdef', // Authorization: Bearer
  B_KEY: 'sk-b-PLACEHOLDER-0123456789abcdef', // x-api-key
  C_KEY: 'sk-c-PLACEHOLDER-0123456789abcdef', // Basic (password part)
  D_KEY: 'sk-d-PLACEHOLDER-0123456789abcdef', // ?key=
  E_KEY: 'sk-e-PLACEHOLDER-0123456789abcdef', // a path segment
  F_KEY: 'sk-f-PLACEHOLDER-0123456789abcdef', // application/json body
  G_KEY: 'sk-g-PLACEHOLDER-0123456789abcdef', // x-g-key or ?g= (two sites; the upstream's stored secret)
};

export type ClientName = 'alpha' | 'beta';

/** The bindings below as data, so the test's oracle states what keyswap must allow without reading src/. */
export interface BindingModel {
  readonly host: string;
  readonly port: number;
  readonly methods: readonly string[] | null;
  /** All bindings here use the one glob /v1/** or none. */
  readonly v1Only: boolean;
  readonly allowPlaintext: boolean;
}
export const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'] as const;
export const BINDINGS: Readonly<Record<SecretName, readonly BindingModel[]>> = {
  A_KEY: [
    { host: HTTPS_HOST, port: 443, methods: null, v1Only: true, allowPlaintext: false },
    { host: PLAIN_HOST, port: 80, methods: null, v1Only: true, allowPlaintext: true },
  ],
  B_KEY: [
    { host: HTTPS_HOST, port: 443, methods: ['GET', 'POST', 'PUT', 'PATCH'], v1Only: true, allowPlaintext: false },
    { host: PLAIN_HOST, port: 80, methods: null, v1Only: true, allowPlaintext: false },
  ],
  C_KEY: [
    { host: HTTPS_HOST, port: 443, methods: null, v1Only: true, allowPlaintext: false },
    { host: PLAIN_HOST, port: 80, methods: ['POST', 'GET'], v1Only: true, allowPlaintext: true },
  ],
  D_KEY: [{ host: HTTPS_HOST, port: 443, methods: ['GET', 'HEAD', 'POST', 'DELETE'], v1Only: true, allowPlaintext: false }],
  E_KEY: [{ host: HTTPS_HOST, port: 443, methods: null, v1Only: true, allowPlaintext: false }],
  F_KEY: [
    { host: HTTPS_HOST, port: 443, methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], v1Only: true, allowPlaintext: false },
    { host: PLAIN_HOST, port: 80, methods: null, v1Only: false, allowPlaintext: true },
  ],
  G_KEY: [{ host: HTTPS_HOST, port: 443, methods: null, v1Only: false, allowPlaintext: false }],
};
export const CLIENT_SECRETS: Readonly<Record<ClientName, readonly SecretName[]>> = {
  alpha: SECRET_NAMES,
  beta: ['A_KEY', 'D_KEY', 'F_KEY'],
};

const INJECT: Readonly<Record<SecretName, string>> = {
  A_KEY: '{ header: Authorization, format: "Bearer {A_KEY}" }',
  B_KEY: '{ header: x-api-key, format: "{B_KEY}" }',
  C_KEY: '{ type: basic }',
  D_KEY: '{ type: query, param: key }',
  E_KEY: '{ type: path }',
  F_KEY: '{ type: body, content_type: application/json, format: "{F_KEY}" }',
  G_KEY: '[{ header: x-g-key, format: "{G_KEY}" }, { type: query, param: g }]',
};

function bindingYaml(b: BindingModel): string {
  const parts = [`host: ${b.host}`];
  if (b.port !== 443) parts.push(`port: ${b.port}`);
  if (b.methods !== null) parts.push(`methods: [${b.methods.join(', ')}]`);
  if (b.v1Only) parts.push('paths: ["/v1/**"]');
  if (b.allowPlaintext) parts.push('allow_plaintext: true');
  return `{ ${parts.join(', ')} }`;
}

export interface PropHarness {
  readonly proxyPort: number;
  readonly caPem: string;
  readonly auditPath: string;
  readonly audit: AuditTail;
  /** Real values: what must never reach an agent, in any form. */
  readonly secrets: ReadonlyMap<SecretName, string>;
  readonly tokens: Readonly<Record<ClientName, string>>;
  readonly httpsUpstream: RecordingUpstream;
  readonly plainUpstream: RecordingUpstream;
  readonly child: ChildProcess;
  stderr(): string;
  close(): Promise<void>;
}

export async function startPropHarness(): Promise<PropHarness> {
  const world = makeTempWorld('prop');
  const dir = world.dir;
  const auditPath = path.join(dir, 'audit.jsonl');
  const testCa = createTestCa();
  const testCaPath = path.join(dir, 'test-ca.pem');
  writeFileSync(testCaPath, testCa.certPem);
  // Values every encoding treats differently (/ + " space = &), so raw, base64, percent and JSON forms differ.
  const secrets = new Map<SecretName, string>(SECRET_NAMES.map((n) => [n, `${n[0]?.toLowerCase()}-real/${randomBytes(8).toString('hex')}+"q r"=&${randomBytes(3).toString('hex')}`]));
  const audit = new AuditTail(auditPath);
  const httpsUpstream = await startRecordingUpstream({ tls: testCa.issue([HTTPS_HOST]), audit, secrets });
  const plainUpstream = await startRecordingUpstream({ tls: null, audit, secrets });
  const tokens: Record<ClientName, string> = { alpha: randomBytes(12).toString('hex'), beta: randomBytes(12).toString('hex') };
  const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

  const config = `version: 1
listen: 127.0.0.1:0
state_dir: ${dir}/state
audit: { path: ${auditPath} }
backend: { type: env, config: { prefix: KEYSWAP_SECRET_ } }
upstream:
  extra_ca_file: ${testCaPath}
  connect_timeout_seconds: 5
  resolve:
    "${HTTPS_HOST}:443": "127.0.0.1:${httpsUpstream.port}"
    "${PLAIN_HOST}:80": "127.0.0.1:${plainUpstream.port}"
clients:
  alpha: { token_sha256: "${sha(tokens.alpha)}", secrets: [${CLIENT_SECRETS.alpha.join(', ')}] }
  beta: { token_sha256: "${sha(tokens.beta)}", secrets: [${CLIENT_SECRETS.beta.join(', ')}] }
secrets:
${SECRET_NAMES.map((n) => `  ${n}:
    placeholder: "${PLACEHOLDERS[n]}"
    inject: ${INJECT[n]}
    bindings:
${BINDINGS[n].map((b) => `      - ${bindingYaml(b)}`).join('\n')}`).join('\n')}
`;
  const configPath = path.join(dir, 'keyswap.yaml');
  writeFileSync(configPath, config);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir };
  for (const [n, v] of secrets) env[`KEYSWAP_SECRET_${n}`] = v;
  const keyswap = startCli(['serve', '--config', configPath], { cwd: dir, env, keepChars: 200_000 });
  const port = await keyswap.listeningPort();
  return {
    proxyPort: port,
    caPem: readFileSync(path.join(dir, 'state', 'ca.pem'), 'utf8'),
    auditPath,
    audit,
    secrets,
    tokens,
    httpsUpstream,
    plainUpstream,
    child: keyswap.child,
    stderr: keyswap.stderr,
    async close() {
      await keyswap.stop();
      await Promise.all([httpsUpstream.close(), plainUpstream.close()]);
      world.remove();
    },
  };
}
