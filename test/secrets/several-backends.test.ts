import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, parseConfig } from '../../src/config/index.js';
import { cli } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { PLACEHOLDER, startHarness } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';

/*
 * Issue #26, item 1: `backends: { NAME: { type, config } }` beside the default `backend:`, a secret choosing one
 * with `backend: NAME`. Each name keyswap fetches comes from exactly one backend, and one backend's outage backs
 * off only its own names.
 */

const FILE = '/cfg/keyswap.yaml';
const PH_B = 'gh-PLACEHOLDER-BBBBBBBBBBBBBBBBBBBBBB';

function errorsOf(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  throw new Error('config was accepted');
}

const doc = (secrets: string, backends = 'backends:\n  mounted: { type: files, config: { directory: /run/secrets } }\n'): string =>
  `version: 1\nbackend: { type: env }\n${backends}secrets:\n${secrets}`;
const secretYaml = (name: string, ph: string, extra = ''): string =>
  `  ${name}:\n    placeholder: "${ph}"\n    inject: { header: Authorization, format: "Bearer {${name}}" }\n    bindings: [ { host: api.example.com } ]\n${extra}`;

describe('several backends: the config', () => {
  it('routes each secret, and every name it fetches, to the backend it names; the rest stay on the default', () => {
    const c = parseConfig(doc(secretYaml('A', 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA') + secretYaml('B', PH_B, '    backend: mounted\n')), FILE);
    expect(c.backend.type).toBe('env');
    expect([...c.backends.keys()]).toEqual(['mounted']);
    expect(c.backends.get('mounted')).toEqual({ type: 'files', directory: '/run/secrets' });
    expect([...c.backendOf]).toEqual([['B', 'mounted']]);
  });

  it('a secret naming a backend that does not exist is an error at its line, listing the ones that do', () => {
    expect(errorsOf(doc(secretYaml('B', PH_B, '    backend: vault\n')))).toEqual([
      `${FILE}:10: secrets.B.backend: 'vault' is not a backend in this file (named under backends: mounted; 'default' is the unnamed backend:)`,
    ]);
  });

  it('one name fetched from two backends is refused: a name has one value', () => {
    const composed = (name: string, ph: string, extra: string): string =>
      `  ${name}:\n    placeholder: "${ph}"\n    inject: { header: Authorization, template: "Bearer {{ SHARED }}" }\n    compose: [SHARED]\n    bindings: [ { host: api.example.com } ]\n${extra}`;
    const errors = errorsOf(doc(composed('A', 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA', '') + composed('B', PH_B, '    backend: mounted\n')));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/secrets\.B\.backend: SHARED is fetched by secrets A and B from different backends \(default and mounted\)/);
  });

  it('`default` is reserved, names are checked, and path/field go only to backends that have paths', () => {
    expect(errorsOf(doc(secretYaml('A', 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA'), 'backends:\n  default: { type: env }\n'))[0]).toMatch(/backends\.default: 'default' names the unnamed backend:/);
    expect(errorsOf(doc(secretYaml('A', 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA'), 'backends:\n  Bad.Name: { type: env }\n'))[0]).toMatch(/backends\.Bad\.Name: backend name 'Bad\.Name' must be lower-case/);
    expect(errorsOf(doc(secretYaml('B', PH_B, '    backend: { name: mounted, field: token }\n')))[0]).toMatch(/secrets\.B\.backend: the files backend reads a secret by its name/);
    expect(errorsOf(doc(secretYaml('A', 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA'), 'backends:\n  m: { type: files, config: {} }\n'))[0]).toMatch(/backends\.m\.config\.directory: is required/);
  });
});

describe('several backends: a running keyswap', () => {
  it('takes one secret from env and another from mounted files; an outage of one leaves the other serving', async () => {
    const mount = tempWorld('mount');
    writeFileSync(path.join(mount.dir, 'GITHUB_TOKEN'), 'mounted-github-value', { mode: 0o400 });
    const h = await startHarness({
      top: `backends:\n  mounted: { type: files, config: { directory: ${mount.dir} } }\ncache: { ttl_seconds: 1, jitter_seconds: 0 }`,
      secrets: `
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [ { host: api.example.test } ]
  GITHUB_TOKEN:
    placeholder: "${PH_B}"
    inject: { header: X-Github-Token, format: "{GITHUB_TOKEN}" }
    backend: mounted
    bindings: [ { host: other.example.test } ]
`,
    });
    try {
      expect((await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);
      expect((await curlVia(h, 'https://other.example.test/v1/echo', { headers: [`X-Github-Token: ${PH_B}`] })).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers['x-github-token']).toBe('mounted-github-value');

      // The mount breaks (a file others may read is refused: BackendUnavailable). Past the TTL, the env secret's
      // first miss comes right after the mount's failure: it must not wait out the other backend's backoff. (The
      // two are bound to different hosts: a request to a host where a secret is bound also needs that secret's
      // value to scrub responses, and fails closed without it.)
      chmodSync(path.join(mount.dir, 'GITHUB_TOKEN'), 0o644);
      await new Promise((r) => setTimeout(r, 1200));
      const broken = await curlVia(h, 'https://other.example.test/v1/echo', { headers: [`X-Github-Token: ${PH_B}`] });
      expect(broken.status).toBe(503);
      const seen = h.upstream.requests.length;
      const other = await curlVia(h, 'https://api.example.test/v1/echo', { headers: [`Authorization: Bearer ${PLACEHOLDER}`] });
      expect(other.status, JSON.stringify(h.auditRecords().at(-1))).toBe(200);
      expect(h.upstream.requests.length).toBe(seen + 1);
      expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${h.canary}`);

      // Recovery: the mount is fixed, and once its backoff ends its secret is served again.
      chmodSync(path.join(mount.dir, 'GITHUB_TOKEN'), 0o400);
      await new Promise((r) => setTimeout(r, 1100));
      const back = await curlVia(h, 'https://other.example.test/v1/echo', { headers: [`X-Github-Token: ${PH_B}`] });
      expect(back.status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers['x-github-token']).toBe('mounted-github-value');
      for (const text of [h.stdout(), h.stderr(), h.auditText()]) expect(text).not.toContain('mounted-github-value');
    } finally {
      await h.close();
    }
  });

  it('doctor checks each backend; secret set refuses a name another backend holds, naming it', () => {
    const w = tempWorld('doctor');
    const mount = path.join(w.dir, 'mount');
    mkdirSync(mount);
    writeFileSync(path.join(mount, 'B'), 'b-value', { mode: 0o400 });
    const config = w.path('keyswap.yaml');
    writeFileSync(config, `version: 1\nstate_dir: ${w.dir}/state\nbackend: { type: env }\nbackends:\n  mounted: { type: files, config: { directory: ${mount} } }\n  spare: { type: files, config: { directory: ${mount} } }\nsecrets:\n${secretYaml('A', 'sk-PLACEHOLDER-AAAAAAAAAAAAAAAAAAAAAA')}${secretYaml('B', PH_B, '    backend: mounted\n')}`);
    const doctor = cli(['doctor', '--config', config], { env: { KEYSWAP_SECRET_A: 'a-value' } });
    expect(doctor.stdout).toMatch(/backend env answers for its one secret/);
    expect(doctor.stdout).toMatch(/backends\.mounted \(files\) answers for its one secret/);
    expect(doctor.stdout).toMatch(/backends\.spare \(files\) is opened but no secret reads from it/);
    expect(doctor.stdout + doctor.stderr).not.toMatch(/a-value|b-value/);
    const set = cli(['secret', 'set', 'B', '--config', config], { input: 'new-value\n' });
    expect(set.status).toBe(2);
    expect(set.stderr).toContain('B is read from backends.mounted, whose backends.mounted.type is files');
  });
});
