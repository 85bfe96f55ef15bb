import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliCollect, startCli, type CliProcess } from '../helpers/cli.js';
import { makeTempWorld, type TempWorld } from '../helpers/temp-world.js';
import { createTestCa, UPSTREAM_HOSTS } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

// Root only: install chowns files to a system user it creates. Everything lands under a temporary
// KEYSWAP_INSTALL_ROOT and a throwaway user name, so the real /etc, /var and any real keyswap user are untouched.
const isRoot = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v setpriv && command -v useradd && command -v curl'], { stdio: 'ignore' }).status === 0;
const PLACEHOLDER = 'sk-PLACEHOLDER-INSTALL-0123456789abcdef';
const NOBODY = 65534;

/** A port free a moment ago: the install test needs a fixed listen port in its config, as a real install has. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

describe.skipIf(!isRoot)('keyswap install / uninstall (as root, in a temporary root)', () => {
  const user = `ksi${randomBytes(4).toString('hex')}`;
  const canary = `real-secret-${randomBytes(12).toString('hex')}`;
  let world: TempWorld | undefined;
  let root: string;
  let project: string;
  let upstream: Upstream;
  let serve: CliProcess | null = null;
  const at = (p: string): string => path.join(root, p);
  const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: project, KEYSWAP_INSTALL_ROOT: root, KEYSWAP_INSTALL_USER: user });
  const keyswap = (args: string[], input?: string) => cli(args, { cwd: project, env: env(), ...(input === undefined ? {} : { input }) });
  const asUser = (uid: number): string[] => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const uidOf = (name: string): number => Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const modeOf = (p: string): string => (statSync(p).mode & 0o7777).toString(8);
  const asNobody = (cmd: string[]) => spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...cmd], { encoding: 'utf8' });

  const asNobodyAsync = (cmd: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const c = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
      c.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
      c.once('close', (status) => resolve({ status, stdout, stderr }));
    });

  beforeAll(async () => {
    world = makeTempWorld('install');
    root = world.dir;
    chmodSync(root, 0o755); // the service user and the agent's user walk through it, as through /
    project = path.join(root, 'home/dev/project');
    mkdirSync(project, { recursive: true, mode: 0o755 });
    const testCa = createTestCa();
    upstream = await startUpstream({ tls: testCa.issue(UPSTREAM_HOSTS) });
    writeFileSync(at('upstream-ca.pem'), testCa.certPem, { mode: 0o644 });
    // A quick start's config, as `keyswap init` writes it, plus what the test needs to reach its local upstream.
    // A fixed port, as a real install has (14322): an agent's `keyswap run` finds the service there.
    const listenPort = await freePort();
    writeFileSync(path.join(project, 'keyswap.yaml'), `version: 1
listen: 127.0.0.1:${listenPort}
state_dir: ./certs
tls_termination: bound
audit: { path: ./audit.jsonl }
backend: { type: file }
upstream:
  extra_ca_file: ${at('upstream-ca.pem')}
  resolve: { "api.example.test:443": "127.0.0.1:${upstream.port}" }
secrets:
  TEST_API_KEY:
    placeholder: "${PLACEHOLDER}"
    inject: { header: Authorization, format: "Bearer {TEST_API_KEY}" }
    bindings: [{ host: api.example.test, methods: [GET], paths: ["/v1/**"] }]
`, { mode: 0o644 });
    const init = keyswap(['init']);
    expect(init.status, init.stderr).toBe(0);
    const set = keyswap(['secret', 'set', 'TEST_API_KEY'], canary);
    expect(set.status, set.stderr).toBe(0);
    expect(existsSync(path.join(project, 'certs/store.key'))).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await serve?.stop(); // userdel refuses a user that still runs a process
    await upstream?.close();
    if (spawnSync('id', [user], { stdio: 'ignore' }).status === 0) spawnSync('userdel', [user]); // only ours: the name is fresh
    world?.remove();
  });

  it('refuses without root, saying why', () => {
    const r = cli(['install'], { cwd: root, env: env(), via: asUser(NOBODY) });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/keyswap install must run as root: it creates the keyswap user/);
  });

  it('creates the user, the directories and the config with service owners and modes, and moves the quick-start keys in', () => {
    const r = keyswap(['install', '--config', 'keyswap.yaml']);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const uid = uidOf(user);
    expect(uid).toBeGreaterThan(0);
    const expected: [string, string, number][] = [
      ['/etc/keyswap', '755', 0],
      ['/etc/keyswap/keyswap.yaml', '644', 0],
      ['/etc/keyswap/ca.pem', '644', 0],
      ['/etc/keyswap/credentials', '700', 0],
      ['/etc/keyswap/credentials/keyswap-store-key', '600', 0],
      ['/etc/keyswap/credentials/keyswap-identity-key', '600', 0],
      ['/etc/keyswap/identity.pub', '644', 0],
      ['/var/lib/keyswap', '700', uid],
      ['/var/lib/keyswap/secrets.enc', '600', uid],
      ['/var/lib/keyswap/ca-key.pem', '600', uid],
      ['/var/lib/keyswap/ca.pem', '644', uid],
      ['/var/log/keyswap', '750', uid],
      ['/etc/systemd/system/keyswap.service', '644', 0],
      ['/etc/systemd/system/keyswap.socket', '644', 0],
    ];
    expect(expected.map(([p]) => [p, modeOf(at(p)), statSync(at(p)).uid])).toEqual(expected);
    for (const gone of ['certs/store.key', 'certs/secrets.enc', 'certs/ca-key.pem']) expect(existsSync(path.join(project, gone)), gone).toBe(false);
    const unit = spawnSync('cat', [at('/etc/systemd/system/keyswap.service')], { encoding: 'utf8' }).stdout;
    expect(unit).toContain(`\nLoadCredential=keyswap-store-key:${at('/etc/keyswap/credentials/keyswap-store-key')}\n`);
    expect(unit).toContain(`\nLoadCredential=keyswap-identity-key:${at('/etc/keyswap/credentials/keyswap-identity-key')}\n`);
    expect(readFileSync(at('/etc/systemd/system/keyswap.socket'), 'utf8')).toMatch(/^ListenStream=127\.0\.0\.1:\d+$/m);
    expect(unit).toContain(`\nUser=${user}\n`);
    expect(r.stdout).toContain(`NODE_EXTRA_CA_CERTS=${at('/etc/keyswap/ca.pem')}`);
    expect(r.stdout).toContain(`TEST_API_KEY=${PLACEHOLDER}`);
    expect(r.stdout).toContain(`runuser -u ${user} --`);
    expect(r.stdout + r.stderr).not.toContain(canary);
  });

  it('changes nothing on a second run, and says so', () => {
    const r = keyswap(['install', '--config', 'keyswap.yaml']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('nothing to change: keyswap is installed as configured');
    expect(r.stdout).not.toMatch(/^(created|moved|wrote|fixed|copied|installed|updated|made) /m);
  });

  it('serves as the service user from the credential; the agent user reads no key file yet gets the secret injected', async () => {
    const uid = uidOf(user);
    const creds = at('/run/credentials/keyswap.service');
    mkdirSync(path.dirname(creds), { recursive: true, mode: 0o755 }); // like /run/credentials: traversable
    mkdirSync(creds, { mode: 0o700 });
    chownSync(creds, uid, uid);
    for (const credential of ['keyswap-store-key', 'keyswap-identity-key']) { // as the unit's LoadCredential= would
      copyFileSync(at(`/etc/keyswap/credentials/${credential}`), path.join(creds, credential));
      chmodSync(path.join(creds, credential), 0o400);
      chownSync(path.join(creds, credential), uid, uid);
    }
    serve = startCli(['serve', '--config', at('/etc/keyswap/keyswap.yaml')], { cwd: root, env: { CREDENTIALS_DIRECTORY: creds }, via: asUser(uid) });
    const port = await serve.listeningPort();
    expect(statSync(at('/var/lib/keyswap/audit.key')).uid).toBe(uid); // made by the first serve, as the service user

    for (const f of ['/etc/keyswap/credentials/keyswap-store-key', '/run/credentials/keyswap.service/keyswap-store-key', '/etc/keyswap/credentials/keyswap-identity-key', '/run/credentials/keyswap.service/keyswap-identity-key', '/var/lib/keyswap/ca-key.pem', '/var/lib/keyswap/audit.key', '/var/lib/keyswap/secrets.enc']) {
      const r = asNobody(['cat', at(f)]);
      expect(r.status, f).not.toBe(0);
      expect(r.stderr, f).toMatch(/Permission denied/);
    }
    expect(asNobody(['cat', at('/etc/keyswap/ca.pem')]).status).toBe(0); // the control: what agents need is readable
    // Asynchronously: the upstream runs in this process, and spawnSync would block it.
    const curl = await asNobodyAsync(['curl', '-sS', '--max-time', '10', '--proxy', `http://127.0.0.1:${port}`, '--cacert', at('/etc/keyswap/ca.pem'), '-H', `Authorization: Bearer ${PLACEHOLDER}`, 'https://api.example.test/v1/echo']);
    expect(curl.status, curl.stderr).toBe(0);
    expect(upstream.requests.map((q) => q.headers.authorization)).toEqual([`Bearer ${canary}`]);
    expect(curl.stdout).not.toContain(canary);

    // keyswap run as the agent's user: it cannot read the state directory, so it finds the service at the
    // config's listen address and the CA that install published, and builds its bundle in a directory of its own.
    const ran = await cliCollect(['run', '--config', at('/etc/keyswap/keyswap.yaml'), '--',
      'sh', '-c', 'curl -sS --max-time 10 -H "Authorization: Bearer $TEST_API_KEY" https://api.example.test/v1/echo && echo "|$NODE_EXTRA_CA_CERTS|$SSL_CERT_FILE"'], { via: asUser(NOBODY) });
    const run = { status: ran.code, stdout: ran.stdout, stderr: ran.stderr };
    expect(run.status, run.stderr).toBe(0);
    expect(upstream.requests.map((q) => q.headers.authorization)).toEqual([`Bearer ${canary}`, `Bearer ${canary}`]);
    expect(run.stdout + run.stderr).not.toContain(canary);
    const [, caSeen, bundleSeen] = run.stdout.trim().split('\n').at(-1)?.split('|') ?? [];
    expect(caSeen).toBe(at('/etc/keyswap/ca.pem'));
    expect(statSync(bundleSeen ?? '').uid).toBe(NOBODY);
    await serve.stop();
    serve = null;
  }, 30_000);

  it('uninstall keeps the store, its key and the user; --purge removes them and says what it removed', () => {
    const keep = keyswap(['uninstall']);
    expect(keep.status, keep.stderr).toBe(0);
    expect(existsSync(at('/etc/systemd/system/keyswap.service'))).toBe(false);
    expect(existsSync(at('/etc/keyswap/ca.pem'))).toBe(false);
    for (const p of ['/var/lib/keyswap/secrets.enc', '/var/lib/keyswap/ca-key.pem', '/etc/keyswap/credentials/keyswap-store-key']) expect(existsSync(at(p)), p).toBe(true);
    expect(spawnSync('id', [user], { stdio: 'ignore' }).status).toBe(0);
    expect(keep.stdout).toContain('kept:');

    const purge = keyswap(['uninstall', '--purge']);
    expect(purge.status, purge.stderr).toBe(0);
    expect(existsSync(at('/var/lib/keyswap'))).toBe(false);
    expect(existsSync(at('/etc/keyswap/credentials'))).toBe(false);
    expect(spawnSync('id', [user], { stdio: 'ignore' }).status).not.toBe(0);
    expect(purge.stdout).toContain(`removed ${at('/var/lib/keyswap')}`);
    expect(purge.stdout).toContain(`removed the user ${user}`);
  });
});
