import type { SpawnSyncReturns } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { makeTempWorld, tempWorld } from '../helpers/temp-world.js';

const P = 'sk-PLACEHOLDER-EXPLAIN-0123456789abcdef';
const G = 'ghp_PLACEHOLDER-EXPLAIN-0123456789abcdef';

function configDir(yaml: string, world = tempWorld('check')): string {
  world.write('keyswap.yaml', yaml);
  return world.dir;
}
const run = (dir: string, ...args: string[]): SpawnSyncReturns<string> =>
  cli(args, { cwd: dir, env: { KEYSWAP_SECRET_OPENAI: 'real-secret-never-fetched-by-explain' } });

const CLEAN = `version: 1
backend: { type: env }
routes: { openai: https://api.openai.com }
secrets:
  OPENAI:
    placeholder: "${P}"
    inject: { header: Authorization, format: "Bearer {OPENAI}" }
    bindings:
      - { host: api.openai.com, methods: [GET, POST], paths: ["/v1/**"] }
`;

describe('keyswap check', () => {
  it('exits 0 on a tightly scoped config', () => {
    const r = run(configDir(CLEAN), 'check');
    expect(r.stdout).toMatch(/no findings/);
    expect(r.status).toBe(0);
  });

  it('exits 1 naming file:line for each risk: any method, any path, a wildcard, plain http, writes on a sensitive host, an unreachable secret', () => {
    const dir = configDir(`version: 1
backend: { type: env }
allow_wildcard_hosts: true
secrets:
  OPENAI:
    placeholder: "${P}"
    inject: { header: Authorization, format: "Bearer {OPENAI}" }
    bindings:
      - { host: api.openai.com }
      - { host: "*.internal.example.com", methods: [GET], paths: ["/**"] }
      - { host: plain.example.com, methods: [GET], paths: ["/x"], allow_plaintext: true }
      - { host: "*.scoped.example.com", subdomains: [eu, us], methods: [GET], paths: ["/x"] }
  GH:
    placeholder: "${G}"
    inject: { header: Authorization, format: "Bearer {GH}" }
    bindings:
      - { host: api.github.com, methods: [GET, DELETE], paths: ["/repos/**"] }
clients:
  ci:
    token_sha256: "${'a'.repeat(64)}"
    secrets: [OPENAI]
`);
    const r = run(dir, 'check');
    expect(r.status).toBe(1);
    const out = r.stdout as string;
    expect(out).toMatch(/keyswap\.yaml:9: secrets\.OPENAI\.bindings\[0\]: api\.openai\.com: every method is allowed/);
    expect(out).toMatch(/keyswap\.yaml:9: .*every path is allowed/);
    expect(out).toMatch(/keyswap\.yaml:10: .*\*\.internal\.example\.com: a wildcard host/);
    expect(out).toMatch(/keyswap\.yaml:11: .*allow_plaintext sends the secret unencrypted/);
    expect(out).toMatch(/keyswap\.yaml:17: .*api\.github\.com: allows DELETE on a host where writes/);
    // A wildcard narrowed by subdomains: names exactly the hosts it covers, so it is not flagged.
    expect(out).not.toMatch(/scoped\.example\.com: a wildcard host/);
    expect(out).toMatch(/no client lists GH/);
  });

  it('exits 2 on an invalid config, with file:line: field', () => {
    const r = run(configDir('version: 1\nsecrets:\n  A: { placeholder: x }\n'), 'check');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/keyswap\.yaml:3: secrets\.A/);
  });
});

describe('keyswap explain (offline: no network, no secret fetched)', () => {
  const world = makeTempWorld('check');
  afterAll(() => world.remove());
  const dir = configDir(CLEAN, world);
  const explain = (...args: string[]): string => {
    const r = run(dir, 'explain', ...args);
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toContain('real-secret-never-fetched-by-explain');
    return r.stdout as string;
  };

  it('names the secret, its site and the binding’s file:line when it would inject', () => {
    expect(explain('POST', 'https://api.openai.com/v1/chat/completions', '-H', `Authorization: Bearer ${P}`)).toMatch(
      /decrypted[\s\S]*OPENAI: injected at header authorization; binding keyswap\.yaml:9 \(api\.openai\.com, methods GET POST, paths \/v1\/\*\*\)/,
    );
  });

  it('says why a placeholder stays a placeholder', () => {
    expect(explain('DELETE', 'https://api.openai.com/v1/files/1', '-H', `Authorization: Bearer ${P}`)).toMatch(/OPENAI: placeholder kept \(binding_scope_violation\)/);
    expect(explain('GET', 'https://api.openai.com/v1/models', '-H', `X-Other: ${P}`)).toMatch(/placeholder kept \(site_violation\)/);
  });

  it('an unbound host is an opaque tunnel; a Host header naming another host is refused', () => {
    expect(explain('GET', 'https://example.com/')).toMatch(/an opaque tunnel: never decrypted/);
    expect(explain('GET', 'https://api.openai.com/v1/models', '-H', 'Host: evil.example')).toMatch(/refused: sni_host_mismatch/);
  });

  it('explains a base-URL route', () => {
    expect(explain('POST', 'http://127.0.0.1:14322/p/openai/v1/chat/completions', '-H', `Authorization: Bearer ${P}`)).toMatch(/base-URL route openai → https:\/\/api\.openai\.com[\s\S]*OPENAI: injected/);
    expect(explain('GET', 'http://127.0.0.1:14322/p/nope/x')).toMatch(/no route 'nope'/);
  });

  it('a malformed request is a usage error (exit 2)', () => {
    expect(run(dir, 'explain', 'GET').status).toBe(2);
    expect(run(dir, 'explain', 'GET', 'not a url').stderr).toMatch(/is not a URL/);
    expect(run(dir, 'explain', 'GET', 'https://x.example/', '-H', 'nocolon').stderr).toMatch(/expected 'Name: value'/);
  });
});

describe('keyswap explain asks the proxy’s own CONNECT router', () => {
  it('under tls_termination: all with unmatched_destination_policy: deny, an unbound host is refused, not "decrypted"', () => {
    const dir = configDir(`version: 1
tls_termination: all
unmatched_destination_policy: deny
backend: { type: env }
secrets:
  A:
    placeholder: "sk-PLACEHOLDER-0123456789ABCDEFGHIJ"
    inject: { header: Authorization, format: "Bearer {A}" }
    bindings: [ { host: api.example.com, methods: [GET], paths: ["/v1/**"] } ]
`);
    expect(run(dir, 'explain', 'GET', 'https://other.example.org/').stdout).toContain('refused (403)');
    expect(run(dir, 'explain', 'GET', 'https://api.example.com/v1/x').stdout).toContain('decrypted (a binding names this host)');
  });
});
