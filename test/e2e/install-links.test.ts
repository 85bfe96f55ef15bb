import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { makeTempWorld, type TempWorld } from '../helpers/temp-world.js';

/*
 * Issue #33, finding 3: `keyswap install`, run as root, followed links the service user controls. It read
 * /var/lib/keyswap/ca.pem and published it 0644 as /etc/keyswap/ca.pem, so a link to a root-only file published
 * that file; it moved the store key from beside the store (a link there to a root-only file became the service's
 * credential, which systemd reads as root); and it chowned files by path after renaming them into the service
 * user's directory. For each file install reads or moves, the service user plants a link; install refuses, or moves
 * the file itself, and the root-only file is neither published, nor read, nor changed.
 */

const isRoot = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v setpriv && command -v useradd'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!isRoot)('keyswap install touches nothing through a link the service user controls (as root)', () => {
  const user = `ksl${randomBytes(4).toString('hex')}`;
  let world: TempWorld | undefined;
  let root: string;
  let project: string;
  const at = (p: string): string => path.join(root, p);
  const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: project, KEYSWAP_INSTALL_ROOT: root, KEYSWAP_INSTALL_USER: user });
  const install = (...extra: string[]) => cli(['install', ...extra], { cwd: project, env: env() });
  const uid = (): number => Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
  /** Runs a shell command as the service user: what a compromised keyswap (or its user) could do. */
  const asService = (script: string) => spawnSync('setpriv', [`--reuid=${uid()}`, `--regid=${uid()}`, '--clear-groups', 'sh', '-c', script], { encoding: 'utf8' });
  const ROOT_ONLY = 'root-only secret, as /etc/shadow would be\n';
  const rootFile = (): string => at('etc/shadow-standin');

  beforeAll(() => {
    world = makeTempWorld('install-links');
    root = world.dir;
    chmodSync(root, 0o755);
    project = path.join(root, 'home/dev/project');
    mkdirSync(project, { recursive: true, mode: 0o755 });
    mkdirSync(at('etc'), { recursive: true, mode: 0o755 });
    writeFileSync(rootFile(), ROOT_ONLY, { mode: 0o600 });
    // A first install with no quick start of its own: the user, the directories, a fresh store key.
    const r = install();
    expect(r.status, r.stderr + r.stdout).toBe(0);
  }, 60_000);

  afterAll(() => {
    if (spawnSync('id', [user], { stdio: 'ignore' }).status === 0) spawnSync('userdel', [user]);
    world?.remove();
  });

  const rootFileUntouched = (): void => {
    const st = statSync(rootFile());
    expect([st.uid, st.mode & 0o777, readFileSync(rootFile(), 'utf8')]).toEqual([0, 0o600, ROOT_ONLY]);
  };

  it('ca.pem in the state directory a link to a root-only file: refused, nothing published', () => {
    const ln = asService(`ln -sf ${rootFile()} ${at('var/lib/keyswap/ca.pem')}`);
    expect(ln.status, ln.stderr).toBe(0);
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ca\.pem is a symbolic link: refused/);
    expect(existsSync(at('etc/keyswap/ca.pem'))).toBe(false);
    expect(r.stdout + r.stderr).not.toContain(ROOT_ONLY.trim());
    rootFileUntouched();
    asService(`rm -f ${at('var/lib/keyswap/ca.pem')}`);
  });

  it('ca.pem a regular file that is not a certificate (a copy of what the service user read somewhere): refused, nothing published', () => {
    const w = asService(`printf 'not a certificate' > ${at('var/lib/keyswap/ca.pem')}`);
    expect(w.status, w.stderr).toBe(0);
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ca\.pem: not one PEM certificate: refused/);
    expect(existsSync(at('etc/keyswap/ca.pem'))).toBe(false);
    asService(`rm -f ${at('var/lib/keyswap/ca.pem')}`);
  });

  it('store.key beside the store a link to a root-only file: refused, never made the service credential', () => {
    // As when the service made its store before the credential was in place.
    renameSync(at('etc/keyswap/credentials/keyswap-store-key'), at('etc/keyswap/credentials/keyswap-store-key.bak'));
    const ln = asService(`ln -sf ${rootFile()} ${at('var/lib/keyswap/store.key')}`);
    expect(ln.status, ln.stderr).toBe(0);
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/store\.key is a symbolic link: refused/);
    expect(existsSync(at('etc/keyswap/credentials/keyswap-store-key'))).toBe(false);
    rootFileUntouched();
    asService(`rm -f ${at('var/lib/keyswap/store.key')}`);
    renameSync(at('etc/keyswap/credentials/keyswap-store-key.bak'), at('etc/keyswap/credentials/keyswap-store-key'));
  });

  it('quick-start state moved into the service directory over a link the service user planted: the file itself lands there, owned by the service, and the link’s target is untouched', () => {
    // A second machine's quick start to move in: the config must be new for install to move state.
    unlinkSync(at('etc/keyswap/keyswap.yaml'));
    mkdirSync(path.join(project, 'certs'), { mode: 0o700 });
    writeFileSync(path.join(project, 'certs/audit.key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    writeFileSync(path.join(project, 'keyswap.yaml'), 'version: 1\nlisten: 127.0.0.1:14399\nstate_dir: ./certs\naudit: { path: ./audit.jsonl }\nbackend: { type: env }\nsecrets: {}\n', { mode: 0o644 });
    // The service user's link where audit.key will go: a dangling one (a link to an existing file makes install keep it).
    const ln = asService(`ln -sf ${at('etc/planted-target')} ${at('var/lib/keyswap/audit.key')}`);
    expect(ln.status, ln.stderr).toBe(0);
    const r = install('--config', 'keyswap.yaml');
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const st = lstatSync(at('var/lib/keyswap/audit.key'));
    expect([st.isFile(), st.uid, st.mode & 0o777]).toEqual([true, uid(), 0o600]);
    expect(existsSync(at('etc/planted-target'))).toBe(false);
    rootFileUntouched();
  });
});
