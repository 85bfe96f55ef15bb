import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, loadConfig, parseConfig, type Config } from '../../src/config/index.js';

const FILE = '/cfg/keyswap.yaml';
const PH = 'sk-PLACEHOLDER-0123456789ABCDEFGHIJ';

function errorsOf(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  throw new Error('config was accepted');
}

const secret = (body: string): string => `version: 1\nsecrets:\n  K:\n${body}`;
const valid = (bindings = '[ { host: api.example.com } ]', inject = '{ header: Authorization, format: "Bearer {K}" }'): string =>
  secret(`    placeholder: "${PH}"\n    inject: ${inject}\n    bindings: ${bindings}\n`);

describe('parseConfig(): defaults and shapes', () => {
  it('fills every default and resolves relative paths against the config file', () => {
    const c: Config = parseConfig(valid(), FILE);
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 14322 });
    expect(c.stateDir).toBe('/cfg/certs');
    expect(c.audit).toEqual({ path: '/cfg/audit.jsonl', keyFile: '/cfg/certs/audit.key', failOnUnwritable: true, maxBytes: null, format: 'keyswap' });
    expect(c.backend).toEqual({ type: 'file', path: '/cfg/certs/secrets.enc', keyFile: null, passphraseFile: null, keyKms: null, kms: { endpoint: null, caFile: null, timeoutMs: 10_000, vault: null } });
    expect(c.cache).toEqual({ ttlSeconds: 300, jitterSeconds: 30, maxEntries: 100, maxStaleSeconds: 0 });
    expect(c.unmatchedDestinationPolicy).toBe('forward_unmodified');
    expect(c.tlsTermination).toBe('bound');
    expect(c.secrets[0]).toMatchObject({ name: 'K', placeholder: PH, sites: [{ type: 'header', header: 'authorization', render: { kind: 'format', format: 'Bearer {K}' } }] });
    expect(c.secrets[0]?.bindings[0]).toMatchObject({ host: 'api.example.com', methods: null, paths: null, port: null, allowPlaintext: false, source: { file: FILE, line: 6 } });
  });

  it('loads agent-vault-proxy shapes unchanged: template + compose, backend config repeating its type, wildcards with subdomains', () => {
    const c = parseConfig(
      `version: 1
allow_wildcard_hosts: true
unmatched_destination_policy: deny
tls_termination: bound
cache: { ttl_seconds: 300, max_entries: 100, jitter_seconds: 30 }
audit: { path: /var/log/avp/audit.jsonl, fail_on_unwritable: true }
backend:
  type: bws
  config:
    type: bws
    organization_id: "3f2b8a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    access_token_path: /etc/avp/bws-token
    state_path: /var/lib/avp/bws-state.json
secrets:
  JIRA_API_BASIC:
    placeholder: "jira_PLACEHOLDER_01HXY1234567890AB"
    inject:
      header: "Authorization"
      template: "Basic {{ (JIRA_EMAIL + ':' + JIRA_API_TOKEN) | b64encode }}"
    compose:
      - JIRA_EMAIL
      - JIRA_API_TOKEN
    bindings:
      - host: "your-tenant.atlassian.net"
        methods: [GET]
        paths: ["/rest/**"]
  JFROG_TOKEN:
    placeholder: "jfrog_PLACEHOLDER_01HXY1234567890AB"
    inject: { header: "Authorization", format: "Bearer {JFROG_TOKEN}" }
    bindings:
      - host: "*.jfrog.io"
        subdomains: ["mycompany", "mycompany-staging"]
`,
      FILE,
    );
    expect(c.backend).toMatchObject({ type: 'bws', accessTokenFile: '/etc/avp/bws-token', stateFile: '/var/lib/avp/bws-state.json', apiUrl: 'https://api.bitwarden.com' });
    expect(c.secrets[0]?.sites[0].render).toMatchObject({ kind: 'template', compose: ['JIRA_EMAIL', 'JIRA_API_TOKEN'] });
    expect(c.secrets[1]?.bindings[0]).toMatchObject({ host: '*.jfrog.io', subdomains: ['mycompany', 'mycompany-staging'] });
  });

  it("reads agent-vault-proxy's `type: multi` as the same list of sites as `inject: [...]`", () => {
    const yaml = (inject: string): string => `version: 1\nsecrets:\n  K:\n    placeholder: "${PH}"\n    inject: ${inject}\n    bindings: [ { host: api.example.com } ]\n`;
    const multi = parseConfig(yaml('{ type: multi, injectors: [{ header: X-Webhook-Token, format: "{K}" }, { type: body, content_type: application/json }] }'), FILE);
    const list = parseConfig(yaml('[{ header: X-Webhook-Token, format: "{K}" }, { type: body, content_type: application/json }]'), FILE);
    expect(multi.secrets[0]?.sites).toEqual(list.secrets[0]?.sites);
    expect(multi.secrets[0]?.sites.map((s) => s.type)).toEqual(['header', 'body']);
  });

  it('loads bindings.example.yaml, which shows every supported feature', () => {
    // Parsed from its text: what is checked is its content; a checkout's file mode depends on the umask it had.
    const file = path.resolve(__dirname, '../../bindings.example.yaml');
    const c = parseConfig(readFileSync(file, 'utf8'), file);
    expect(c.secrets.length).toBeGreaterThanOrEqual(5);
    expect(new Set(c.secrets.flatMap((s) => s.sites.map((i) => i.type)))).toEqual(new Set(['header', 'basic', 'query', 'path', 'body']));
    expect(c.clients?.get('coding-agent')?.secrets.size).toBe(4);
  });
});

describe('parseConfig(): every error names file:line: field and what is valid', () => {
  it.each<[string, string, string]>([
    ['an unknown top-level key', 'version: 1\nlisten_addr: x\nsecrets: {}\n', `${FILE}:2: listen_addr: unknown key 'listen_addr'; valid keys here: version, listen`],
    ['a wrong version', 'version: 2\nsecrets: {}\n', `${FILE}:1: version: must be one of: 1`],
    ['missing secrets', 'version: 1\n', `${FILE}:1: secrets: is required`],
    ['a short placeholder', secret('    placeholder: "sk-PLACEHOLDER-1"\n    inject: { header: A, format: "{K}" }\n    bindings: [ { host: a.example.com } ]\n'), `${FILE}:4: secrets.K.placeholder: must be at least 24 characters`],
    ['a placeholder without the marker', secret('    placeholder: "sk-0123456789012345678901234567"\n    inject: { header: A, format: "{K}" }\n    bindings: [ { host: a.example.com } ]\n'), `${FILE}:4: secrets.K.placeholder: must contain the marker 'PLACEHOLDER'`],
    ['an upper-case host', valid('[ { host: API.example.com } ]'), `${FILE}:6: secrets.K.bindings[0].host: must be lower-case: api.example.com`],
    ['a host with a scheme', valid('[ { host: "https://api.example.com" } ]'), `${FILE}:6: secrets.K.bindings[0].host: 'https://api.example.com' must be a bare DNS name`],
    ['a bare * host', valid('[ { host: "*" } ]'), `${FILE}:6: secrets.K.bindings[0].host: '*' would bind every host`],
    ['a wildcard without allow_wildcard_hosts', valid('[ { host: "*.example.com" } ]'), `${FILE}:6: secrets.K.bindings[0].host: wildcard hosts need \`allow_wildcard_hosts: true\``],
    ['a wildcard on a public suffix', `allow_wildcard_hosts: true\n${valid('[ { host: "*.co.uk" } ]')}`, `${FILE}:7: secrets.K.bindings[0].host: '*.co.uk' covers a public suffix`],
    ['an empty methods list', valid('[ { host: a.example.com, methods: [] } ]'), `${FILE}:6: secrets.K.bindings[0].methods: is empty; list the methods`],
    ['a * method', valid('[ { host: a.example.com, methods: ["*"] } ]'), `${FILE}:6: secrets.K.bindings[0].methods[0]: '*' is not an HTTP method`],
    ['a misspelt method', valid('[ { host: a.example.com, methods: [GET, POTS] } ]'), `${FILE}:6: secrets.K.bindings[0].methods[1]: 'POTS' is not an HTTP method`],
    ['an empty paths list', valid('[ { host: a.example.com, paths: [] } ]'), `${FILE}:6: secrets.K.bindings[0].paths: is empty`],
    ['a partial-segment glob', valid('[ { host: a.example.com, paths: ["/v1/chat*"] } ]'), `${FILE}:6: secrets.K.bindings[0].paths[0]: '/v1/chat*': '*' and '**' must be whole segments`],
    ['no bindings', valid('[]'), `${FILE}:6: secrets.K.bindings: is empty`],
    ['an unknown binding key', valid('[ { host: a.example.com, method: [GET] } ]'), `${FILE}:6: secrets.K.bindings[0].method: unknown key 'method'; valid keys here: host, methods, paths, port, allow_plaintext, subdomains`],
    ['a format without the slot', valid(undefined, '{ header: Authorization, format: "Bearer x" }'), `${FILE}:5: secrets.K.inject.format: must contain {K} (or {secret})`],
    ['an injector keyswap does not have (sigv4a)', valid(undefined, '{ type: sigv4a, format: "{K}" }'), `${FILE}:5: secrets.K.inject.type: inject type 'sigv4a' is not one this version of keyswap has`],
    ['two sites naming one place', valid(undefined, '[{ header: X-Key, format: "{K}" }, { header: x-key, format: "Bearer {K}" }]'), `${FILE}:5: secrets.K.inject[1]: names the same place as inject[0] (header:x-key)`],
    ['two body sites in a list', valid(undefined, '[{ type: body }, { header: X-Key, format: "{K}" }, { type: body, content_type: text/plain }]'), `${FILE}:5: secrets.K.inject[2]: names the same place as inject[0] (body)`],
    ['multi with one injector', valid(undefined, '{ type: multi, injectors: [{ header: X-Key, format: "{K}" }] }'), `${FILE}:5: secrets.K.inject.injectors: lists 1 injector; multi takes 2 to 4`],
    ['multi nested', valid(undefined, '{ type: multi, injectors: [{ header: X-Key, format: "{K}" }, { type: multi }] }'), `${FILE}:5: secrets.K.inject.injectors[1].type: multi cannot nest`],
    ['multi with a leaf key of its own', valid(undefined, '{ type: multi, header: X-Key, injectors: [{ header: X-Key, format: "{K}" }, { type: body }] }'), `${FILE}:5: secrets.K.inject.header: not valid for inject type multi`],
    ['injectors without multi', valid(undefined, '{ header: X-Key, format: "{K}", injectors: [] }'), `${FILE}:5: secrets.K.inject.injectors: only valid with type: multi`],
    ['an inject that is neither a site nor a list', valid(undefined, '"Bearer {K}"'), `${FILE}:5: secrets.K.inject: must be a mapping or a list, not a string`],
    ['an empty inject list', valid(undefined, '[]'), `${FILE}:5: secrets.K.inject`],
    ['a bad site inside a list', valid(undefined, '[{ header: X-Key, format: "{K}" }, { header: Authorization, format: "Bearer x" }]'), `${FILE}:5: secrets.K.inject[1].format: must contain {K} (or {secret})`],
    ['a bad rate', valid('[ { host: a.example.com, rate: "lots" } ]'), `${FILE}:6: secrets.K.bindings[0].rate: 'lots' is not N/second, N/minute or N/hour`],
    ['a client naming an unknown secret', `${valid()}clients:\n  c: { token_sha256: "${'a'.repeat(64)}", secrets: [NOPE] }\n`, `${FILE}:8: clients.c.secrets[0]: 'NOPE' is not a secret in this file`],
    ['a template without compose', valid(undefined, `{ header: A, template: "{{ K | b64encode }}" }`), `${FILE}:5: secrets.K.inject.template: a template needs \`compose: [NAME, …]\``],
    ['a template with an unknown filter', secret(`    placeholder: "${PH}"\n    inject: { header: A, template: "{{ X | upper }}" }\n    compose: [X]\n    bindings: [ { host: a.example.com } ]\n`), `${FILE}:5: secrets.K.inject.template: template: unknown filter`],
    ['a non-boolean allow_plaintext', valid('[ { host: a.example.com, allow_plaintext: "yes" } ]'), `${FILE}:6: secrets.K.bindings[0].allow_plaintext: must be a boolean, not a string`],
    ['a bad listen address', `listen: "localhost"\n${valid()}`, `${FILE}:1: listen: 'localhost' is not host:port`],
    ['a backend type mismatch', `backend: { type: file, config: { type: bws } }\n${valid()}`, `${FILE}:1: backend.config.type: 'bws' disagrees with backend.type 'file'`],
    ['a bws backend without organization_id', `backend: { type: bws, config: {} }\n${valid()}`, `${FILE}:1: backend.config.organization_id: is required`],
    ['broken YAML', 'version: 1\nsecrets: [\n', `${FILE}:`],
    ['a duplicate key', 'version: 1\nversion: 1\nsecrets: {}\n', `${FILE}:2: (yaml)`],
  ])('%s', (_name, text, expected) => {
    const errors = errorsOf(text);
    expect(errors.some((e) => e.startsWith(expected))).toBe(true);
  });

  it('two secrets sharing a placeholder, or one placeholder inside another, are refused at load', () => {
    const two = `version: 1\nsecrets:\n  A:\n    placeholder: "${PH}"\n    inject: { header: X, format: "{A}" }\n    bindings: [ { host: a.example.com } ]\n  B:\n    placeholder: "${PH}"\n    inject: { header: Y, format: "{B}" }\n    bindings: [ { host: a.example.com } ]\n`;
    expect(errorsOf(two)).toContain(`${FILE}:8: secrets.B.placeholder: is the same as the placeholder of A; each secret needs its own`);
    const nested = two.replace(`placeholder: "${PH}"\n    inject: { header: Y`, `placeholder: "${PH}-MORE"\n    inject: { header: Y`);
    expect(errorsOf(nested)).toContain(`${FILE}:8: secrets.B.placeholder: contains the placeholder of A; no placeholder may be part of another`);
  });

  it('reports every problem in one pass', () => {
    expect(errorsOf(valid('[ { host: A.example.com, methods: [] } ]')).length).toBe(2);
  });

  it('a missing file is a ConfigErrors naming the file', async () => {
    await expect(loadConfig('/nonexistent/keyswap.yaml')).rejects.toThrow('/nonexistent/keyswap.yaml:1: (file): no such file');
  });
});
