import { X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { backendOfSecret, clientPolicy, namesToFetch, ConfigErrors, describeClientPolicy, loadConfig, LooseWriteAccessError, minterEndpoint, minterInputs, type BackendSpec, type Config, type MinterSpec, type SecretSpec } from '../config/index.js';
import { MintFailed, MintService, TransportError, type TokenTransport } from '../mint/index.js';
import { tokenTransport, UpstreamClient } from '../proxy/index.js';
import type { Secret } from '../secret.js';
import { decryptedHosts } from '../policy/index.js';
import { BackendUnavailable, openBackends, PENDING_WRITES_FILE, pendingSummary, resolveKeySource, SecretNotFound, type SecretsBackend } from '../secrets/index.js';
import { describeConstraints, readCaConstraints, uncoveredHosts, type NameConstraints } from '../tls/index.js';
import { auditKeyLocation } from './audit-key.js';
import { CA_EXPIRY_WARNING_DAYS, ROTATE_FIX } from './ca-requirements.js';
import { EXIT } from './exit-codes.js';
import { count, type CliIo } from './io.js';
import { looksLikeRealKey } from './presets.js';
import { pidFile } from './pid-file.js';

export const DOCTOR_USAGE = `usage: keyswap doctor [--config FILE] [--exchange]

Checks the config, the CA files and their permissions, the CA's expiry and name constraints, that the CA is not
trusted system-wide, the backend, each token endpoint (answering over verified TLS, and a writable backend for
rotated refresh tokens), the audit log, and this shell's proxy and CA variables. --exchange also mints each
credential once (most providers rotate the refresh token when asked). Each problem comes with the command that
fixes it. Exit 0: all good; 1: problems found; 2: the config is invalid, or others could
write it or its extra_ca_file (then nothing else is checked).`;

import { tlsListenerChecks } from './doctor-tls-listener.js';
import { lockedUids, TABLE } from '../egress/index.js';
import { deriveSharedKeys, SharedStore } from '../shared/index.js';
import { createLogger } from '../log.js';
import { sendSamples } from './alerts-command.js';
import { backendSource, parentProxyChecks, type Check } from './doctor-parent.js';

const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

export async function doctorCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'keyswap.yaml' }, exchange: { type: 'boolean', default: false } }, strict: true });
  let config: Config;
  try {
    config = await loadConfig(path.resolve(io.cwd, values.config));
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    const invalid = err.errors.filter((e) => !(e instanceof LooseWriteAccessError));
    for (const e of err.errors) if (e instanceof LooseWriteAccessError) io.stdout.write(`!! ${e.file}:${e.line}: ${e.field}: ${e.finding}\n   fix: ${e.fix}\n`);
    if (invalid.length > 0) io.stdout.write(`!! ${values.config} is invalid:\n${invalid.map((e) => `   ${e.message}`).join('\n')}\n   fix: edit it; \`keyswap check\` re-validates\n`);
    // Nothing else is checked: a config others could have written may point the backend checks at their server.
    io.stdout.write('\nthe other checks need a config keyswap would load; fix the above and run keyswap doctor again\n');
    return EXIT.usage;
  }
  const checks = [
    // First: the one finding that means the rest protects less than it seems.
    ...(await keyExposureChecks(config, io)),
    { ok: true, what: `config ${config.file} loads (${count(config.secrets.length, 'secret')}) and only its owner can change it; \`keyswap check\` lints its bindings` },
    clientCheck(config),
    ...(await caChecks(config)),
    ...(await backendChecks(config, io)),
    ...(await tlsListenerChecks(config)),
    ...(await sendSamples(config, io, null)),
    ...(await mintingChecks(config, io, values.exchange)),
    ...(await pendingWriteChecks(config)),
    ...(await parentProxyChecks(config, io)),
    ...(await auditChecks(config)),
    ...(await auditKeyChecks(config, io)),
    ...(await serviceChecks(config)),
    ...(await egressChecks(config)),
    ...(await sharedStateChecks(config, io)),
    ...shellChecks(config, io),
  ];
  for (const c of checks) io.stdout.write(`${c.ok ? 'ok' : '!!'} ${c.what}${c.fix ? `\n   fix: ${c.fix}` : ''}\n`);
  const problems = checks.filter((c) => !c.ok).length;
  io.stdout.write(problems === 0 ? '\nall good\n' : `\n${problems} problem${problems === 1 ? '' : 's'}\n`);
  return problems === 0 ? EXIT.ok : EXIT.runtime;
}

async function caChecks(config: Config): Promise<Check[]> {
  const dir = config.stateDir;
  const cert = path.join(dir, 'ca.pem');
  const key = path.join(dir, 'ca-key.pem');
  const dirMode = await stat(dir).then((s) => s.mode & 0o777, () => null);
  if (dirMode === null) return [{ ok: false, what: `state_dir ${dir} does not exist (no CA yet)`, fix: 'keyswap init' }];
  const out: Check[] = [dirMode & 0o077 ? { ok: false, what: `state_dir ${dir} is ${dirMode.toString(8)}: others can list the CA key's directory`, fix: `chmod 700 ${dir}` } : { ok: true, what: `state_dir ${dir} is private (700)` }];
  const keyMode = await stat(key).then((s) => s.mode & 0o777, () => null);
  const pem = await readFile(cert, 'utf8').catch(() => null);
  if (keyMode === null || pem === null) return [...out, { ok: false, what: `no CA in ${dir}`, fix: 'keyswap serve makes one at its first start' }];
  out.push(keyMode & 0o077 ? { ok: false, what: `${key} is ${keyMode.toString(8)}: the CA key must be readable by keyswap alone`, fix: `chmod 600 ${key}` } : { ok: true, what: `CA key ${key} is 600` });
  const x509 = new X509Certificate(pem);
  const daysLeft = Math.floor((Date.parse(x509.validTo) - Date.now()) / 86_400_000);
  out.push(daysLeft < CA_EXPIRY_WARNING_DAYS ? { ok: false, what: daysLeft < 0 ? 'the CA has expired: agents reject every leaf it signs' : `the CA expires in ${daysLeft} days`, fix: ROTATE_FIX } : { ok: true, what: `CA valid for ${daysLeft} more days` });
  out.push(constraintCheck(pem, config));
  const body = pem.replace(/-----[^-]+-----|\s/g, '');
  for (const bundle of SYSTEM_BUNDLES) {
    const text = await readFile(bundle, 'utf8').catch(() => '');
    if (text.replace(/\s/g, '').includes(body)) {
      out.push({ ok: false, what: `keyswap's CA is in the system trust store (${bundle}): every program on this host would accept certificates its key signs`, fix: 'remove it from /usr/local/share/ca-certificates/ and run: sudo update-ca-certificates --fresh (agents trust it per process, through keyswap run)' });
      return out;
    }
  }
  out.push({ ok: true, what: 'the CA is not in the system trust store (agents trust it per process)' });
  return out;
}

/**
 * Whether the CA's name constraints fit the config: a host they leave out is a problem (serve refuses to start);
 * a CA with none while only bound hosts are decrypted is one too, though serve still runs with it (a CA made by
 * an older keyswap, or under tls_termination: all): its key signs for any site.
 */
function constraintCheck(pem: string, config: Config): Check {
  let constraints: NameConstraints;
  try {
    constraints = readCaConstraints(pem);
  } catch {
    return { ok: false, what: 'the CA\'s name constraints cannot be read', fix: ROTATE_FIX };
  }
  const scope = decryptedHosts(config);
  const missing = uncoveredHosts(constraints, scope);
  if (missing.length > 0) return { ok: false, what: `the CA's name constraints do not cover ${missing.join(', ')}, which ${path.basename(config.file)} decrypts: keyswap serve refuses to start`, fix: ROTATE_FIX };
  if (constraints.kind === 'none' && scope.kind === 'hosts') return { ok: false, what: 'the CA is unconstrained: its key could sign for any site, though only bound hosts are decrypted', fix: `rotate to constrain it: ${ROTATE_FIX}` };
  if (constraints.kind === 'none') return { ok: true, what: 'the CA is unconstrained, as tls_termination: all needs (its key can sign for any site)' };
  return { ok: true, what: `the CA's name constraints cover every decrypted host (${describeConstraints(constraints)})` };
}

async function backendChecks(config: Config, io: CliIo): Promise<Check[]> {
  let backend;
  try {
    backend = await openBackends(config, { ...io.env }, () => {});
  } catch (err) {
    return [{ ok: false, what: `a backend cannot be opened: ${(err as Error).message}`, fix: 'see docs/backends.md' }];
  }
  const byBackend = new Map<string, string[]>([['', []], ...[...config.backends.keys()].map((k): [string, string[]] => [k, []])]);
  for (const name of new Set(config.secrets.flatMap((s) => namesToFetch(s)))) byBackend.get(backend.partition(name).key)?.push(name);
  const out: Check[] = [];
  try {
    for (const [key, names] of byBackend) {
      const spec = key === '' ? config.backend : (config.backends.get(key) as BackendSpec);
      const label = key === '' ? `backend ${spec.type}` : `backends.${key} (${spec.type})`;
      if (key !== '' && names.length === 0) {
        out.push({ ok: false, what: `${label} is opened but no secret reads from it`, fix: `name it in a secret (backend: ${key}) or remove it` });
        continue;
      }
      out.push(await oneBackendCheck(backend, label, spec, names));
    }
  } finally {
    await backend.close();
  }
  return out;
}

/** One backend: each name it should hold, fetched (proving reachability and auth), never printed. */
async function oneBackendCheck(backend: SecretsBackend, label: string, spec: BackendSpec, names: readonly string[]): Promise<Check> {
  const missing: string[] = [];
  for (const name of names) {
    try {
      (await backend.fetch(name, { signal: AbortSignal.timeout(5000) })).reveal(); // fetched to prove reachability; never printed
    } catch (err) {
      if (err instanceof SecretNotFound) missing.push(name);
      else if (err instanceof BackendUnavailable) return { ok: false, what: `${label} unavailable: ${err.message}`, fix: 'see docs/backends.md for its settings' };
      else throw err;
    }
  }
  const fix = spec.type === 'file' ? missing.map((n) => `keyswap secret set ${n}`).join('; ') : spec.type === 'env' ? `set ${missing.map((n) => `${spec.prefix}${n}`).join(', ')} in keyswap's own environment (not the agent's)` : `store ${missing.join(', ')} in the ${spec.type} backend`;
  if (missing.length > 0) return { ok: false, what: `${label} has no value for ${missing.join(', ')}: requests using their placeholders get 503`, fix };
  return { ok: true, what: `${label} answers for ${names.length === 1 ? 'its one secret' : `all ${count(names.length, 'secret')}`}` };
}

/**
 * Each minting secret's token endpoint: does it answer over TLS verified as keyswap verifies upstreams (a GET,
 * no credential sent), and can a rotated refresh token be stored. With --exchange, one real exchange each.
 */
async function mintingChecks(config: Config, io: CliIo, exchange: boolean): Promise<Check[]> {
  const minters = config.secrets.flatMap((s) => s.sites.flatMap((site) => {
    const endpoint = site.render.kind === 'minted' ? minterEndpoint(site.render.minter) : null;
    return site.render.kind === 'minted' && endpoint !== null ? [{ secret: s, minter: site.render.minter, endpoint }] : [];
  }));
  if (minters.length === 0) return [];
  const proxySecrets = config.upstream.parent?.credentialsSecret ? backendSource(config, io) : null;
  const upstream = new UpstreamClient(config.upstream, config.upstream.extraCaFile === null ? null : await readFile(config.upstream.extraCaFile, 'utf8'), proxySecrets);
  const transport = tokenTransport(upstream);
  const out: Check[] = [];
  try {
    for (const { secret, minter, endpoint } of minters) {
      try {
        const r = await transport.send(endpoint, { method: 'GET', headers: {}, body: null });
        out.push({ ok: true, what: `${secret.name}: token endpoint ${endpoint.host} answers over verified TLS (HTTP ${r.status} to a GET; nothing sent)` });
      } catch (err) {
        out.push({ ok: false, what: `${secret.name}: token endpoint ${endpoint.host} cannot be reached (${err instanceof TransportError ? err.reason : 'error'}): requests using ${secret.name} get 503`, fix: 'check the URL, upstream.resolve and upstream.extra_ca_file' });
      }
      const holder = backendOfSecret(config, secret)?.type ?? config.backend.type;
      if (minter.kind === 'oauth2_refresh' && minter.writeBack && holder !== 'file' && holder !== 'bws') {
        out.push({ ok: false, what: `${secret.name}: a refresh token the provider rotates cannot be stored in the ${holder} backend: the request that gets one is refused`, fix: 'move its secrets to the file or bws backend, or set refresh_token_write_back: false' });
      }
    }
    if (exchange) out.push(...(await exchangeOnce(config, io, minters, transport)));
  } finally {
    upstream.close();
    await proxySecrets?.close();
  }
  return out;
}

async function exchangeOnce(config: Config, io: CliIo, minters: readonly { secret: SecretSpec; minter: MinterSpec; endpoint: URL }[], transport: TokenTransport): Promise<Check[]> {
  const backend = await openBackends(config, { ...io.env }, () => {});
  const out: Check[] = [];
  try {
    const mint = new MintService({
      transport,
      audit: async () => {}, // doctor serves nothing: there is no request for the record to vouch for
      secrets: {
        get: (name) => backend.fetch(name, { signal: AbortSignal.timeout(5000) }),
        fresh: (name) => backend.fetch(name, { signal: AbortSignal.timeout(5000) }),
        store: async (name, value) => {
          if (backend.store === undefined) throw new Error('read-only backend');
          await backend.store(name, value);
          return 'written';
        },
      },
    });
    for (const { secret, minter, endpoint } of minters) {
      try {
        const inputs = new Map(await Promise.all(minterInputs(minter).map(async (n): Promise<[string, Secret]> => [n, await backend.fetch(n, { signal: AbortSignal.timeout(5000) })])));
        await mint.credential(secret.name, minter, inputs); // minted to prove it can be; never printed
        out.push({ ok: true, what: `${secret.name}: minted a credential at ${endpoint.host}` });
      } catch (err) {
        const why = err instanceof MintFailed ? `${err.reason}${err.status === null ? '' : ` (HTTP ${err.status})`}` : err instanceof SecretNotFound ? 'an input is not in the backend' : 'error';
        out.push({ ok: false, what: `${secret.name}: no credential minted: ${why}`, fix: 'check its *_secret values and the provider; keyswap never prints them' });
      }
    }
  } finally {
    await backend.close?.();
  }
  return out;
}

/** A rotated value keyswap could not save yet (a full disk, the store's lock held): it retries, and says so here. */
async function pendingWriteChecks(config: Config): Promise<Check[]> {
  let waiting: Awaited<ReturnType<typeof pendingSummary>>;
  try {
    waiting = await pendingSummary(path.join(config.stateDir, PENDING_WRITES_FILE));
  } catch (err) {
    // A state directory under keyswap's own user is not this user's to read: the service reports it in its log.
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return [];
    return [{ ok: false, what: `${path.join(config.stateDir, PENDING_WRITES_FILE)}: ${(err as Error).message}` }];
  }
  return waiting.map((w) => ({ ok: false, what: `${w.name}: a rotated value has waited to be saved since ${w.since}; keyswap serves it and retries`, fix: 'check free disk space and that no `keyswap secret` command holds the store lock' }));
}

async function auditChecks(config: Config): Promise<Check[]> {
  const file = config.audit.path;
  const dir = path.dirname(file);
  if (!(await access(dir, constants.W_OK).then(() => true, () => false))) return [{ ok: false, what: `audit directory ${dir} is missing or not writable: keyswap would refuse every injection`, fix: `mkdir -p ${dir} (writable by keyswap's user)` }];
  const mode = await stat(file).then((s) => s.mode & 0o777, () => null);
  if (mode === null) return [{ ok: true, what: `audit log ${file} will be created 600 on first start` }];
  if (mode & 0o022) return [{ ok: false, what: `audit log ${file} is ${mode.toString(8)}: others could forge history`, fix: `chmod 600 ${file}` }];
  const writable = await open(file, 'a').then(async (fh) => { await fh.close(); return true; }, () => false);
  return [writable ? { ok: true, what: `audit log ${file} is writable and private` } : { ok: false, what: `audit log ${file} is not writable`, fix: `chown it to keyswap's user` }];
}

/**
 * Whether this user (the agent's, in the quick start) can read the store key: then code running as it, such as a
 * poisoned package, decrypts every secret. Root and keyswap's own service user are expected to read it.
 */
async function keyExposureChecks(config: Config, io: CliIo): Promise<Check[]> {
  if (config.backend.type !== 'file') return [];
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0 || userInfo().username === 'keyswap') return [];
  const source = await resolveKeySource(config.backend, io.env).catch(() => null);
  if (source?.kind !== 'keyfile') return [];
  const readable = await access(source.path, constants.R_OK).then(() => true, () => false);
  if (!readable) return [];
  return [{ ok: false, what: `the store key ${source.path} is readable by this user (${userInfo().username}): anything running as this user, a poisoned package in an agent included, can decrypt every secret`, fix: 'run keyswap under its own user: sudo keyswap install (docs/install-systemd.md)' }];
}

/** Who may use keyswap, in the words `client list` and `explain` use (config/client-policy.ts). */
function clientCheck(config: Config): Check {
  const policy = clientPolicy(config.clients);
  return policy.kind === 'closed'
    ? { ok: false, what: describeClientPolicy(policy), fix: 'keyswap client add NAME --secrets A,B, then keyswap reload' }
    : { ok: true, what: describeClientPolicy(policy) };
}

/** The audit key: whoever can read it can rewrite the log undetected (K6). */
async function auditKeyChecks(config: Config, io: CliIo): Promise<Check[]> {
  const { file } = auditKeyLocation(config, io.env);
  const mode = await stat(file).then((s) => s.mode & 0o777, () => null);
  if (mode === null) return [{ ok: true, what: `audit key ${file} will be created 600 on first start` }];
  if (mode & 0o077) return [{ ok: false, what: `audit key ${file} is ${mode.toString(8)}: whoever can read it can rewrite the audit log undetected`, fix: `chmod 600 ${file}` }];
  return [{ ok: true, what: `audit key ${file} is 600` }];
}

async function serviceChecks(config: Config): Promise<Check[]> {
  const [pid, url] = (await readFile(pidFile(config.stateDir), 'utf8').catch(() => '')).split('\n');
  const alive = pid !== undefined && /^\d+$/.test(pid) && (await readFile(`/proc/${pid}/cmdline`, 'utf8').then((c) => c.includes('keyswap') || c.includes('main.js'), () => false));
  return [alive ? { ok: true, what: `keyswap is serving (pid ${pid}, ${url})` } : { ok: true, what: `no keyswap serving ${config.file} now (keyswap run starts one per command; keyswap serve for a long-lived one)` }];
}

/**
 * shared_state: the key every replica must hold is there and long enough, and Redis answers (its TLS verified, the
 * password accepted) within 3 s. Neither value is printed.
 */
async function sharedStateChecks(config: Config, io: CliIo): Promise<Check[]> {
  const spec = config.sharedState;
  if (spec === null) return [];
  const source = backendSource(config, io);
  const out: Check[] = [];
  try {
    if (spec.keySecret !== null) {
      try {
        deriveSharedKeys(await source.get(spec.keySecret), spec.keySecret);
        out.push({ ok: true, what: `shared_state.key_secret ${spec.keySecret} is in the backend and long enough (every replica must hold the same)` });
      } catch (err) {
        out.push({ ok: false, what: (err as Error).message, fix: `keyswap secret set ${spec.keySecret} (openssl rand -base64 48), the same value on every replica` });
      }
    }
    let password: string | null = null;
    try {
      password = spec.redis.passwordSecret === null ? null : (await source.get(spec.redis.passwordSecret)).reveal();
    } catch (err) {
      out.push({ ok: false, what: `shared_state.redis.password_secret: ${(err as Error).message}`, fix: `keyswap secret set ${spec.redis.passwordSecret}` });
      return out;
    }
    const where = `${spec.redis.tls === null ? 'redis' : 'rediss'}://${spec.redis.host}:${spec.redis.port}/${spec.redis.db}`;
    const store = await SharedStore.open(spec.redis, password, createLogger('silent'), 3_000).catch((err: Error) => err);
    if (store instanceof Error) {
      out.push({ ok: false, what: `shared_state: ${where}: ${store.message}`, fix: 'check shared_state.redis (url, tls.ca_file)' });
      return out;
    }
    out.push(store.available
      ? { ok: true, what: `shared_state: Redis at ${where} answers; limits, quotas and minted credentials are shared (on_unavailable: ${spec.onUnavailable})` }
      : { ok: false, what: `shared_state: Redis at ${where} did not answer within 3 s (down, TLS not trusted, or the password refused); requests that need it are ${spec.onUnavailable === 'refuse' ? 'refused (503)' : 'served at each limit ÷ replicas'}`, fix: 'start Redis, or fix shared_state.redis (url, password_secret, tls)' });
    await store.close();
  } finally {
    await source.close();
  }
  return out;
}

/** The egress lock, as the kernel has it (root only: nftables is not for others to list). */
async function egressChecks(config: Config): Promise<Check[]> {
  if (process.getuid?.() !== 0) return [{ ok: true, what: 'egress lock: not checked (run keyswap doctor as root to list the locked users)' }];
  const locked = await lockedUids(TABLE).catch((err: Error) => err);
  if (locked instanceof Error) return [{ ok: true, what: `egress lock: not checked (${locked.message})` }];
  if (locked.length === 0) return [{ ok: true, what: `egress lock: no user is locked; an agent that ignores HTTPS_PROXY goes around keyswap (keyswap egress lock --user AGENT --config ${config.file})` }];
  const listeners = [config.listen, ...(config.listenTls === null ? [] : [config.listenTls.listen])].map((l) => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}/tcp`);
  return locked.map((l) => {
    const stale = listeners.filter((x) => !l.allows.includes(x));
    return stale.length === 0
      ? { ok: true, what: `egress lock: UID ${l.uid} may connect only to ${l.allows.join(', ')}` }
      : { ok: false, what: `egress lock: UID ${l.uid} may not reach ${stale.join(', ')} (the config's listener changed since it was locked)`, fix: `keyswap egress lock --uid ${l.uid} --config ${config.file}` };
  });
}

function shellChecks(config: Config, io: CliIo): Check[] {
  const env = io.env;
  const out: Check[] = [];
  const proxy = env.HTTPS_PROXY ?? env.https_proxy;
  if (proxy === undefined) out.push({ ok: true, what: 'this shell has no HTTPS_PROXY: run agents with `keyswap run -- CMD` (or eval "$(keyswap env)")' });
  else out.push({ ok: true, what: `this shell's HTTPS_PROXY is ${proxy}` });
  const noProxy = `${env.NO_PROXY ?? ''},${env.no_proxy ?? ''}`.split(',').map((s) => s.trim()).filter(Boolean);
  const bypass = noProxy.filter((n) => n === '*' || config.secrets.some((s) => s.bindings.some((b) => b.host === n.replace(/^\./, '') || b.host.endsWith(n.startsWith('.') ? n : `.${n}`))));
  if (bypass.length > 0) out.push({ ok: false, what: `NO_PROXY holds ${bypass.join(', ')}: requests there bypass keyswap and carry only a placeholder`, fix: "export NO_PROXY='localhost,127.0.0.1,::1'" });
  const ca = env.NODE_EXTRA_CA_CERTS;
  if (proxy !== undefined && ca !== path.join(config.stateDir, 'ca.pem')) out.push({ ok: false, what: `NODE_EXTRA_CA_CERTS is ${ca ?? 'unset'}: Node agents will not trust keyswap's CA`, fix: `export NODE_EXTRA_CA_CERTS=${path.join(config.stateDir, 'ca.pem')}` });
  for (const [name, value] of Object.entries(env)) {
    const provider = value === undefined ? null : looksLikeRealKey(name, value);
    if (provider !== null) out.push({ ok: false, what: `${name} in this shell looks like a real ${provider} key: any agent started here can read it`, fix: `move it into keyswap (keyswap init --from-env FILE, or keyswap secret set ${name}) and unset ${name}` });
  }
  return out;
}
