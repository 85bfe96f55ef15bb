import { randomBytes, X509Certificate } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMap, parseDocument } from 'yaml';
import { loadConfig, type Config } from '../config/index.js';
import { resolveKeySource } from '../secrets/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { hasTool, installLayout, lookupUser, requireRoot, runTool, type InstallLayout } from './install-layout.js';
import { moveOwned, readOwnedFile } from './root-files.js';
import { identityPublicOf, newIdentityKey } from '../tls/index.js';
import { writeFileAtomic } from '../atomic-file.js';
import { lockedUids, lockScript, runNft, TABLE } from '../egress/index.js';
import { refuseOpenForwarding } from './egress-command.js';

export const INSTALL_USAGE = `usage: keyswap install [--config FILE] [--lock-egress-for USER]…      (as root)

Installs keyswap as a service under its own user, so code running as the agent's user cannot read the store, its
key, the CA key or the audit key. Creates the keyswap user, /etc/keyswap (config, the CA certificate for agents,
credentials/keyswap-store-key 0600 root), /var/lib/keyswap (0700 keyswap) and /var/log/keyswap (0750 keyswap);
writes /etc/keyswap/keyswap.yaml from FILE (default ./keyswap.yaml) with state_dir and audit.path moved there,
unless one exists; moves FILE's store, store key, CA and audit key in; installs the systemd unit and starts it
when systemd runs, else prints how to start it. A second run changes nothing.
--lock-egress-for USER: USER's sockets may reach only keyswap (keyswap egress lock), now and at every start of
the service (the unit's ExecStartPre); kept by later runs.`;

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN_JS = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

const MINIMAL_CONFIG = `# keyswap.yaml, written by \`keyswap install\`. Every key is documented in docs/configuration.md.
version: 1
listen: 127.0.0.1:14322
tls_termination: bound
backend: { type: file }
secrets: {}
`;

type Owner = { readonly uid: number; readonly gid: number };
const ROOT: Owner = { uid: 0, gid: 0 };

/** What one run did, so a second run can say it changed nothing. */
class Changes {
  readonly done: string[] = [];
  constructor(private readonly io: CliIo) {}
  add(what: string): void {
    this.done.push(what);
    this.io.stdout.write(`${what}\n`);
  }
}

export async function installCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'lock-egress-for': { type: 'string', multiple: true } }, strict: true });
  requireRoot('keyswap install', 'it creates the keyswap user, writes /etc/keyswap and /var/lib/keyswap owned by root and by that user, and installs a systemd unit');
  const lay = installLayout(io.env);
  const changes = new Changes(io);

  const svc = ensureUser(lay, changes);
  await ensureDir(path.dirname(lay.etcDir), 0o755, ROOT, null);
  await ensureDir(path.dirname(lay.stateDir), 0o755, ROOT, null);
  await ensureDir(path.dirname(lay.logDir), 0o755, ROOT, null);
  await ensureDir(lay.etcDir, 0o755, ROOT, changes);
  await ensureDir(lay.credentialsDir, 0o700, ROOT, changes);
  await ensureDir(lay.stateDir, 0o700, svc, changes);
  await ensureDir(lay.logDir, 0o750, svc, changes);

  if (existsSync(lay.config)) {
    io.stdout.write(`keeping the existing ${lay.config}\n`);
  } else {
    const source = values.config === undefined ? path.resolve(io.cwd, 'keyswap.yaml') : path.resolve(io.cwd, values.config);
    if (values.config !== undefined && !existsSync(source)) throw new CliError(`--config ${values.config}: no such file`, EXIT.usage);
    const from = existsSync(source) ? await loadConfig(source) : null;
    await writeInstalledConfig(lay, from, changes);
    if (from !== null) await moveState(lay, from, svc, changes, io);
  }
  const config = await loadConfig(lay.config);
  await ensureStoreKey(lay, config, svc, changes, io);
  await copyCa(lay, svc, changes, io);
  await ensureIdentity(lay, changes);
  const lockUids = await egressUids(lay, values['lock-egress-for'] ?? [], svc);
  await writeUnit(lay, changes, lockUids);
  for (const uid of lockUids) await lockNow(uid, config, changes);
  await writeSocketUnit(lay, config, changes);

  if (lay.hasSystemd) {
    if (changes.done.length > 0) runTool('systemctl', ['daemon-reload']);
    const active = runQuiet('systemctl', ['is-active', '--quiet', 'keyswap']) && runQuiet('systemctl', ['is-enabled', '--quiet', 'keyswap']);
    if (!active || changes.done.length > 0) {
      // The socket first: it holds the port from now on, whether the service runs or not.
      runTool('systemctl', ['enable', '--now', 'keyswap.socket']);
      runTool('systemctl', ['enable', 'keyswap']);
      runTool('systemctl', [active ? 'restart' : 'start', 'keyswap']);
      changes.add('systemd: keyswap.socket and keyswap.service enabled and started');
    }
  }
  io.stdout.write(changes.done.length === 0 ? '\nnothing to change: keyswap is installed as configured\n' : `\ninstalled (${changes.done.length} change${changes.done.length === 1 ? '' : 's'})\n`);
  if (!lay.hasSystemd) io.stdout.write(startSteps(lay));
  io.stdout.write(agentView(lay, config));
  return EXIT.ok;
}

function runQuiet(cmd: string, args: readonly string[]): boolean {
  try {
    runTool(cmd, args);
    return true;
  } catch {
    return false; // "not active" is an answer here, not a failure
  }
}

function ensureUser(lay: InstallLayout, changes: Changes): Owner {
  const found = lookupUser(lay.user);
  if (found !== null) return found;
  if (hasTool('useradd')) {
    runTool('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', lay.user]);
  } else {
    runTool('adduser', ['--system', '--group', '--no-create-home', '--home', '/nonexistent', '--shell', '/usr/sbin/nologin', lay.user]);
  }
  const made = lookupUser(lay.user);
  if (made === null) throw new CliError(`the system user ${lay.user} was created but cannot be looked up`, EXIT.runtime);
  changes.add(`created the system user and group ${lay.user} (uid ${made.uid}, no login shell, no home)`);
  return made;
}

/** The directory with exactly this mode and owner; `changes` null for a parent that only has to exist. */
async function ensureDir(dir: string, mode: number, owner: Owner, changes: Changes | null): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (st === null) {
    await mkdir(dir, { recursive: true, mode });
    await chown(dir, owner.uid, owner.gid);
    await chmod(dir, mode); // the umask narrowed mkdir's mode
    changes?.add(`created ${dir} (${mode.toString(8)}, ${owner.uid === 0 ? 'root' : `uid ${owner.uid}`})`);
    return;
  }
  if (changes === null) return;
  if (!st.isDirectory()) throw new CliError(`${dir} exists and is not a directory`, EXIT.runtime);
  if ((st.mode & 0o7777) !== mode || st.uid !== owner.uid || st.gid !== owner.gid) {
    await chown(dir, owner.uid, owner.gid);
    await chmod(dir, mode);
    changes.add(`fixed ${dir}: now ${mode.toString(8)}, ${owner.uid === 0 ? 'root' : `uid ${owner.uid}`}`);
  }
}

/**
 * /etc/keyswap/keyswap.yaml: the quick-start config with its state and audit paths moved to the service's
 * directories, everything else kept (comments too). 0644 root: the service user must not be able to change its
 * own bindings, and keyswap refuses a config anyone but root or itself could write.
 */
async function writeInstalledConfig(lay: InstallLayout, from: Config | null, changes: Changes): Promise<void> {
  const doc = parseDocument(from === null ? MINIMAL_CONFIG : await readFile(from.file, 'utf8'));
  doc.set('state_dir', lay.stateDir);
  if (!isMap(doc.get('audit'))) doc.set('audit', doc.createNode({}));
  doc.setIn(['audit', 'path'], path.join(lay.logDir, 'audit.jsonl'));
  doc.deleteIn(['audit', 'key_file']); // its default, <state_dir>/audit.key, is where moveState puts it
  if (doc.hasIn(['backend', 'config', 'path']) && from?.backend.type === 'file') doc.setIn(['backend', 'config', 'path'], path.join(lay.stateDir, 'secrets.enc'));
  // The store key becomes the unit's credential (resolveKeySource finds it there); a key_file would bypass it.
  if (from?.backend.type === 'file' && doc.hasIn(['backend', 'config', 'key_file'])) doc.deleteIn(['backend', 'config', 'key_file']);
  const fh = await open(lay.config, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  await fh.writeFile(doc.toString({ lineWidth: 0 }));
  await fh.close();
  await chown(lay.config, 0, 0);
  await chmod(lay.config, 0o644);
  // What was written must load; if not (a relative path in FILE that meant something only beside it), it goes, so a
  // second run does not keep a broken config as "the existing one".
  await loadConfig(lay.config).catch(async (err: unknown) => {
    await unlink(lay.config);
    throw err;
  });
  changes.add(`wrote ${lay.config} from ${from === null ? 'a minimal config' : from.file} (state_dir ${lay.stateDir}, audit.path ${path.join(lay.logDir, 'audit.jsonl')})`);
}

/** The quick-start state, moved (not copied: one place holds the keys) into the service's directories. */
async function moveState(lay: InstallLayout, from: Config, svc: Owner, changes: Changes, io: CliIo): Promise<void> {
  const files: [string, string, Owner][] = [
    [path.join(from.stateDir, 'ca.pem'), path.join(lay.stateDir, 'ca.pem'), svc],
    [path.join(from.stateDir, 'ca-key.pem'), path.join(lay.stateDir, 'ca-key.pem'), svc],
    [from.audit.keyFile, path.join(lay.stateDir, 'audit.key'), svc],
  ];
  if (from.backend.type === 'file') {
    files.push([from.backend.path, path.join(lay.stateDir, 'secrets.enc'), svc], [`${from.backend.path}.revision`, path.join(lay.stateDir, 'secrets.enc.revision'), svc]);
    if (from.backend.keyKms !== null) {
      io.stdout.write(`note: the store key is wrapped by ${from.backend.keyKms}; only its wrapped form is in the store, so nothing else moves. The service needs the KMS's credentials (backend.config.kms)\n`);
    } else if (from.backend.passphraseFile === null) {
      // Only a key file moves (the process env is ignored: the quick start's own key is the one beside its store).
      const source = await resolveKeySource(from.backend, {});
      if (source.kind === 'keyfile') files.push([source.path, lay.credential, ROOT]);
    } else {
      io.stdout.write(`note: the store is protected by a passphrase file (${from.backend.passphraseFile}); keyswap install does not move it: keep backend.config.passphrase_file readable only by ${lay.user}\n`);
    }
  }
  for (const [src, dst, owner] of files) {
    if (path.resolve(src) === path.resolve(dst) || !existsSync(src)) continue;
    if (existsSync(dst)) {
      io.stdout.write(`note: ${dst} exists; ${src} was left where it is (not overwritten)\n`);
      continue;
    }
    // Owner and mode set on the open file before it is renamed into a directory the service user controls.
    await moveOwned(src, dst, owner, null);
    changes.add(`moved ${src} to ${dst} (${owner.uid === 0 ? 'root' : lay.user})`);
  }
}

/**
 * The unit reads the credential file as root and hands it to the service; it must exist before the first start
 * (a missing LoadCredential= source fails the unit). With no store yet, a fresh key is made now.
 */
async function ensureStoreKey(lay: InstallLayout, config: Config, svc: Owner, changes: Changes, io: CliIo): Promise<void> {
  if (config.backend.type !== 'file' || config.backend.keyFile !== null || config.backend.passphraseFile !== null || config.backend.keyKms !== null) return;
  if (existsSync(lay.credential)) return;
  const beside = path.join(path.dirname(config.backend.path), 'store.key');
  // lstat: a link planted beside the store (to a root-only file) is there to be refused, not followed.
  if (await lstat(beside).then(() => true, () => false)) {
    // A key the service user made (its first serve) or root did; never one reached through a link.
    await moveOwned(beside, lay.credential, ROOT, 0o600, [svc.uid, 0]);
    changes.add(`moved ${beside} to ${lay.credential} (600, root)`);
    return;
  }
  if (existsSync(config.backend.path)) {
    io.stderr.write(`warning: ${config.backend.path} exists but its key is nowhere keyswap install looks (${beside}); put it at ${lay.credential} (0600 root) before starting the service\n`);
    return;
  }
  await writeFile(lay.credential, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  await chown(lay.credential, 0, 0);
  changes.add(`made a new store key at ${lay.credential} (600, root): the store is created at the first \`secret set\``);
}

/**
 * Publishes the CA certificate for agents (0644). It is read from the service user's directory, so it is read as
 * that directory deserves: never through a link, only a file the service user or root owns, and only a PEM
 * certificate is published (whatever else is there stays there).
 */
async function copyCa(lay: InstallLayout, svc: Owner, changes: Changes, io: CliIo): Promise<void> {
  const ca = path.join(lay.stateDir, 'ca.pem');
  if (!(await lstat(ca).then(() => true, () => false))) {
    io.stdout.write(`CA: not made yet; the first serve makes it in ${lay.stateDir}; run keyswap install again then to copy ca.pem to ${lay.caCopy} for agents\n`);
    return;
  }
  const pem = (await readOwnedFile(ca, [svc.uid, 0], 64 * 1024)).toString('utf8');
  try {
    if (!/^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?$/.test(pem)) throw new Error('not one PEM certificate');
    if (!new X509Certificate(pem).ca) throw new Error('not a CA certificate');
  } catch (err) {
    throw new CliError(`${ca}: ${(err as Error).message}: refused, nothing published`, EXIT.runtime);
  }
  const current = await readFile(lay.caCopy, 'utf8').catch(() => null);
  const st = await lstat(lay.caCopy).catch(() => null);
  if (current === pem && st !== null && st.isFile() && (st.mode & 0o777) === 0o644 && st.uid === 0) return;
  await writeFileAtomic(lay.caCopy, pem, 0o644);
  await chmod(lay.caCopy, 0o644); // /etc/keyswap is root's: a path is safe here, and the umask narrowed the mode
  changes.add(`copied the CA certificate to ${lay.caCopy} (644, for agents; the key stays in ${lay.stateDir})`);
}

/**
 * Publishes keyswap's identity public key beside the config (0644): `keyswap run` checks that what answers on the
 * listen address holds the matching key before it sends a token or starts an agent. Read as the CA is: never
 * through a link, only a file the service user or root owns, only an Ed25519 public key.
 */
/**
 * keyswap's identity key, root's like the store key (a credential the unit loads: the service user uses it, cannot
 * replace it), made once; its public half is published beside the config, where `keyswap run` reads it.
 */
async function ensureIdentity(lay: InstallLayout, changes: Changes): Promise<void> {
  let privatePem = await readFile(lay.identityCredential, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (privatePem === null) {
    const made = newIdentityKey().privatePem;
    await writeFileAtomic(lay.identityCredential, made, 0o600);
    privatePem = made;
    changes.add(`made keyswap's identity key ${lay.identityCredential} (600, root; the unit loads it as a credential)`);
  }
  const pem = identityPublicOf(privatePem);
  if ((await readFile(lay.identityPublic, 'utf8').catch(() => null)) === pem) return;
  await writeFileAtomic(lay.identityPublic, pem, 0o644);
  await chmod(lay.identityPublic, 0o644);
  changes.add(`published its public half ${lay.identityPublic} (644: keyswap run checks what answers on the port against it)`);
}

/**
 * The packaged unit, adapted: ExecStart names this node and this keyswap; the store key is loaded with
 * LoadCredential= from the 0600 root file, not LoadCredentialEncrypted=, because encrypting it needs
 * systemd-creds and the host's credential secret or a TPM, which install cannot count on (a container, a host
 * without systemd as PID 1); the file is as unreadable to the agent's user either way. /etc/keyswap stays 0755 so
 * agents can read ca.pem (ConfigurationDirectoryMode would otherwise narrow it at every start), and the log
 * directory 0750.
 */
async function writeUnit(lay: InstallLayout, changes: Changes, lockUids: readonly number[]): Promise<void> {
  const shipped = await readFile(path.join(PACKAGE_ROOT, 'systemd/keyswap.service'), 'utf8');
  // `+`: run as root whatever User= says (nftables is root's); before keyswap serves, so the lock is in place first.
  const locks = lockUids.map((uid) => `\nExecStartPre=+${process.execPath} ${MAIN_JS} egress lock --uid ${uid} --config ${lay.config}`).join('');
  const unit = shipped
    .replace(/^User=.*$/m, `User=${lay.user}`)
    .replace(/^Group=.*$/m, `Group=${lay.user}`)
    .replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${MAIN_JS} serve --config ${lay.config}${locks}`)
    .replace(/^LoadCredentialEncrypted=keyswap-store-key:.*$/m, `# Written by keyswap install: the key file is 0600 root; systemd reads it as root and hands the service a private copy.\nLoadCredential=keyswap-store-key:${lay.credential}`)
    .replace(/^LoadCredential=keyswap-identity-key:.*$/m, `LoadCredential=keyswap-identity-key:${lay.identityCredential}`)
    .replace(/^ConfigurationDirectoryMode=.*$/m, 'ConfigurationDirectoryMode=0755')
    .replace(/^LogsDirectoryMode=.*$/m, 'LogsDirectoryMode=0750');
  const current = await readFile(lay.unitFile, 'utf8').catch(() => null);
  if (current === unit) return;
  await mkdir(path.dirname(lay.unitFile), { recursive: true, mode: 0o755 });
  await writeFile(lay.unitFile, unit, { mode: 0o644 });
  await chmod(lay.unitFile, 0o644);
  changes.add(`${current === null ? 'installed' : 'updated'} ${lay.unitFile}`);
}

/**
 * The UIDs whose egress the unit locks: those named now (--lock-egress-for) and those an earlier run wrote into the
 * unit, so a later run without the flag keeps them. Never root, never keyswap's own user.
 */
async function egressUids(lay: InstallLayout, users: readonly string[], svc: Owner): Promise<number[]> {
  const current = await readFile(lay.unitFile, 'utf8').catch(() => '');
  const kept = [...current.matchAll(/^ExecStartPre=\+.* egress lock --uid (\d+) /gm)].map((m) => Number(m[1]));
  const named = users.map((u) => {
    const found = lookupUser(u);
    if (found === null) throw new CliError(`--lock-egress-for ${u}: no such user`, EXIT.usage);
    if (found.uid === 0) throw new CliError(`--lock-egress-for ${u}: root cannot be locked`, EXIT.usage);
    if (found.uid === svc.uid) throw new CliError(`--lock-egress-for ${u}: that is keyswap's own user, which must reach upstreams`, EXIT.usage);
    return found.uid;
  });
  return [...new Set([...kept, ...named])].sort((a, b) => a - b);
}

/** The lock applied now as well (the unit reapplies it at every start): what was locked is said once. */
async function lockNow(uid: number, config: Config, changes: Changes): Promise<void> {
  refuseOpenForwarding(config);
  const before = await lockedUids(TABLE).catch(() => []);
  const listeners = [config.listen, ...(config.listenTls === null ? [] : [config.listenTls.listen])];
  try {
    await runNft(['-f', '-'], lockScript({ uid, listeners, dns: null, transparentPort: null }));
  } catch (err) {
    throw new CliError(`--lock-egress-for: ${(err as Error).message}`, EXIT.runtime);
  }
  if (!before.some((l) => l.uid === uid)) changes.add(`egress locked for UID ${uid}: it may connect only to keyswap (${listeners.map((l) => `${l.host}:${l.port}`).join(', ')})`);
}

/** keyswap.socket with the config's listen address: systemd binds it, and holds it while keyswap is down. */
async function writeSocketUnit(lay: InstallLayout, config: Config, changes: Changes): Promise<void> {
  const shipped = await readFile(path.join(PACKAGE_ROOT, 'systemd/keyswap.socket'), 'utf8');
  const { host, port } = config.listen;
  const unit = shipped.replace(/^ListenStream=.*$/m, `ListenStream=${host.includes(':') ? `[${host}]` : host}:${port}`);
  const current = await readFile(lay.socketFile, 'utf8').catch(() => null);
  if (current === unit) return;
  await mkdir(path.dirname(lay.socketFile), { recursive: true, mode: 0o755 });
  await writeFile(lay.socketFile, unit, { mode: 0o644 });
  await chmod(lay.socketFile, 0o644);
  changes.add(`${current === null ? 'installed' : 'updated'} ${lay.socketFile} (ListenStream=${host}:${port})`);
}

function startSteps(lay: InstallLayout): string {
  const creds = `${lay.root === '/' ? '' : lay.root}/run/credentials/keyswap.service`;
  return `
systemd is not running here${lay.root === '/' ? '' : ` (or the install root is ${lay.root})`}; start keyswap by hand, as the unit would:
  install -d -m 0700 -o ${lay.user} -g ${lay.user} ${creds}
  install -m 0400 -o ${lay.user} -g ${lay.user} ${lay.credential} ${creds}/keyswap-store-key
  install -m 0400 -o ${lay.user} -g ${lay.user} ${lay.identityCredential} ${creds}/keyswap-identity-key
  CREDENTIALS_DIRECTORY=${creds} runuser -u ${lay.user} -- ${process.execPath} ${MAIN_JS} serve --config ${lay.config}
`;
}

function agentView(lay: InstallLayout, config: Config): string {
  const listen = `http://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`;
  const placeholders = config.secrets.map((s) => `  ${s.name}=${s.placeholder}`);
  return `
what the agent's user gets (it runs as any user but ${lay.user} and root), all set by
  keyswap run --config ${lay.config} -- <agent>     (or: eval "$(keyswap env --config ${lay.config})")
  HTTPS_PROXY=${listen} HTTP_PROXY=${listen} NO_PROXY=localhost,127.0.0.1,::1
  NODE_EXTRA_CA_CERTS=${lay.caCopy}   (OpenSSL clients: the system roots plus this file in SSL_CERT_FILE)
${placeholders.length === 0 ? '  no secrets configured yet' : placeholders.join('\n')}
`;
}
