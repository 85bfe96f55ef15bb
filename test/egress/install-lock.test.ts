import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYSWAP } from '../helpers/cli.js';
import { makeTempWorld, type TempWorld } from '../helpers/temp-world.js';

/*
 * Issue #29, item 1: `keyswap install --lock-egress-for USER` locks the user now and writes the lock into the unit
 * (ExecStartPre=+…, reapplied at every start); a later run without the flag keeps it; doctor (as root) lists it.
 * Run inside a network namespace of the test's own, so the host's ruleset is never touched; everything else lands
 * under a temporary KEYSWAP_INSTALL_ROOT with throwaway user names.
 */

const isRoot = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v useradd && command -v nft'], { stdio: 'ignore' }).status === 0;
const tag = randomBytes(3).toString('hex');
const NS = `ksl-${tag}`;
const SERVICE_USER = `ksv${tag}`;
const AGENT_USER = `ksg${tag}`;

let world: TempWorld | undefined;
let root = '';
let project = '';
const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: project, KEYSWAP_INSTALL_ROOT: root, KEYSWAP_INSTALL_USER: SERVICE_USER });
const keyswap = (args: readonly string[]): ReturnType<typeof spawnSync> => spawnSync('ip', ['netns', 'exec', NS, process.execPath, KEYSWAP, ...args], { cwd: project, env: env(), encoding: 'utf8', timeout: 60_000 });
const uidOf = (name: string): number => Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());

beforeAll(() => {
  if (!isRoot) return;
  world = makeTempWorld('install-lock');
  root = world.dir;
  chmodSync(root, 0o755);
  project = path.join(root, 'home/dev/project');
  mkdirSync(project, { recursive: true, mode: 0o755 });
  // A lock needs `deny`: under forward_unmodified keyswap would tunnel the locked user anywhere (refused below).
  writeFileSync(path.join(project, 'keyswap.yaml'), 'version: 1\nlisten: 127.0.0.1:14322\nstate_dir: ./certs\nunmatched_destination_policy: deny\nbackend: { type: file }\nsecrets: {}\n', { mode: 0o644 });
  expect(spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', AGENT_USER]).status).toBe(0);
  expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
});

afterAll(() => {
  if (!isRoot) return;
  spawnSync('ip', ['netns', 'del', NS]);
  for (const u of [AGENT_USER, SERVICE_USER]) if (spawnSync('id', [u], { stdio: 'ignore' }).status === 0) spawnSync('userdel', [u]);
  world?.remove();
});

describe.skipIf(!isRoot)('keyswap install --lock-egress-for', () => {
  it('locks the user now and at every start of the unit; a later run keeps it; doctor lists it; root and keyswap\'s own user are refused', () => {
    const first = keyswap(['install', '--lock-egress-for', AGENT_USER]);
    expect(first.status, String(first.stderr)).toBe(0);
    const uid = uidOf(AGENT_USER);
    expect(String(first.stdout)).toContain(`egress locked for UID ${uid}: it may connect only to keyswap (127.0.0.1:14322)`);
    const unitFile = path.join(root, 'etc/systemd/system/keyswap.service');
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toMatch(new RegExp(`^ExecStartPre=\\+\\S+ \\S+main\\.js egress lock --uid ${uid} --config \\S+keyswap\\.yaml$`, 'm'));
    const listed = spawnSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'inet', 'keyswap'], { encoding: 'utf8' });
    expect(listed.stdout).toContain(`${uid} : jump uid_${uid}`);

    const again = keyswap(['install']);
    expect(again.status, String(again.stderr)).toBe(0);
    expect(String(again.stdout)).toContain('nothing to change');
    expect(readFileSync(unitFile, 'utf8')).toBe(unit);

    const doctor = keyswap(['doctor', '--config', path.join(root, 'etc/keyswap/keyswap.yaml')]);
    expect(String(doctor.stdout), String(doctor.stderr)).toContain(`ok egress lock: UID ${uid} may connect only to 127.0.0.1:14322/tcp`);

    const rootLock = keyswap(['install', '--lock-egress-for', 'root']);
    expect(rootLock.status).toBe(2);
    expect(String(rootLock.stderr)).toContain('root cannot be locked');
    const own = keyswap(['install', '--lock-egress-for', SERVICE_USER]);
    expect(own.status).toBe(2);
    expect(String(own.stderr)).toContain("keyswap's own user");
  }, 120_000);
});
