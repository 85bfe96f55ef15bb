import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { AuditWriter, chainIdOf, describeFinding, OcsfCopy, loadAuditKey, readHeadMark, rotatedFiles, verifyAuditFiles } from '../audit/index.js';
import type { ClientSpec, Config, HostPort } from '../config/index.js';
import { KeyswapMetrics, startMetricsServer, type MetricsServer } from '../metrics/index.js';
import type { Logger } from '../log.js';
import { compilePolicy, decryptedHosts } from '../policy/index.js';
import { mintServiceFor, startProxy, tokenTransport, UpstreamClient, type RunningProxy, type Snapshot } from '../proxy/index.js';
import { ScrubberCache } from '../scrub/index.js';
import { RateLimiter, readUsageFile, restoredCounts, UsageFileWriter, UsageMeter, type Quotas } from '../usage/index.js';
import { openSharedState } from '../shared/index.js';
import { Alerter, AlertQueue, expiringCredentials } from '../alerts/index.js';
import { startConsole, type RunningConsole } from '../console/index.js';
import { ControlError, DecisionFeed, Operator, readOperatorFile, startControlSocket, type AuditCheck, type ControlDeps, type ControlSocket } from '../control/index.js';
import { explainForOperator } from './explain-command.js';
import { openBackends, PENDING_WRITES_FILE, PendingWrites, SecretCache, type Secret } from '../secrets/index.js';
import { createLeafKey, Identity, IDENTITY_CREDENTIAL, IDENTITY_KEY_FILE, LeafCache, openCa, writeTrustBundle } from '../tls/index.js';
import { agentEnvironment, backendMaterialNames, exportLines, writeAgentConfigFiles } from './agent-env.js';
import { anchorAuditHead, headMarkFile } from './audit-anchor.js';
import { auditKeyLocation } from './audit-key.js';
import { checkExpiry, requireCoverage } from './ca-requirements.js';
import { CliError, EXIT } from './exit-codes.js';
import { clearInitialEnvironment } from './initial-environment.js';
import type { CliIo } from './io.js';
import { checkListenAddress } from './loopback.js';
import { pidFile } from './pid-file.js';
import { boundHosts, readExtraCa, reloadedSnapshot, reloadErrors } from './reload-snapshot.js';
import { mailSender } from './mail-sender.js';
import { VERSION } from './version.js';

/**
 * The runtime every command that proxies starts (serve, run, quickstart, demo): builds everything from the config
 * in order, owns every resource it opens (nothing is global), and stops it all in reverse.
 */
export interface Started {
  readonly proxyUrl: string;
  /** The TLS listener (`listen_tls`) as an https:// proxy URL; null without one. */
  readonly tlsProxyUrl: string | null;
  /** keyswap's CA alone, and the system roots plus it (for clients whose CA variable replaces their trust store). */
  readonly caPath: string;
  readonly bundlePath: string;
  /** Lockdown, revocations, sessions and approvals of this keyswap (`run` opens its command's session here). */
  readonly operator: Operator;
  stop(reason: string): Promise<void>;
}

export interface StartOptions {
  readonly metricsAt: HostPort | null;
  /** Where the banner goes: stdout for `serve`; stderr for `run`, whose stdout belongs to the child. */
  readonly announce: (text: string) => void;
  /**
   * `serve` records its pid for `keyswap reload` and answers the control API on state_dir/control.sock; a proxy
   * inside `keyswap run` lives only as long as its child, and has neither.
   */
  readonly writePid: boolean;
  /** Listen here instead of the config's address (`run` takes any free port on the config's host). */
  readonly listen?: HostPort;
  /** The same for `listen_tls`, when the config has one. */
  readonly listenTls?: HostPort;
  /** --allow-non-loopback: the operator restricts who connects by other means (checkListenAddress). */
  readonly allowNonLoopback: boolean;
  /** A listening socket systemd handed over (socket activation, `keyswap.socket`): listened on instead of an address. */
  readonly inheritedFd?: number;
}

export async function start(config: Config, io: CliIo, log: Logger, opts: StartOptions): Promise<Started> {
  const { metricsAt } = opts;
  const listenAt = opts.listen ?? config.listen;
  // First, before any file is created: every proxy (serve, run, quickstart, demo) and metrics listener passes here.
  checkListenAddress('proxy', `${config.file}: listen`, listenAt.host, opts.allowNonLoopback);
  if (config.listenTls !== null) checkListenAddress('proxy', `${config.file}: listen_tls.listen`, config.listenTls.listen.host, opts.allowNonLoopback);
  if (config.ui !== null && opts.writePid) checkListenAddress('ui', `${config.file}: ui.listen`, config.ui.listen.host, opts.allowNonLoopback);
  if (metricsAt !== null) checkListenAddress('metrics', `--metrics ${metricsAt.host}:${metricsAt.port}`, metricsAt.host, opts.allowNonLoopback);
  // A new CA is constrained to the hosts this config decrypts; an existing one must cover them (K7).
  const ca = await openCa(config.stateDir, { create: true, scope: decryptedHosts(config) });
  requireCoverage(ca, config);
  checkExpiry(ca, new Date(), log);
  const bundlePath = await writeTrustBundle(config.stateDir, ca.certPem);
  await writeAgentConfigFiles(bundlePath);
  const extraCaPem = config.upstream.extraCaFile === null ? null : await readExtraCa(config);
  const leaves = new LeafCache(ca, createLeafKey(), { max: 1000 });
  // Every bound host gets its leaf now, so no agent request ever waits for a mint (DESIGN.md §2).
  await leaves.prewarm(boundHosts(config));

  // Sources are read when scraped, so they may name things built below.
  let proxy: RunningProxy | undefined;
  let audit: AuditWriter | undefined;
  let secrets: SecretCache | undefined;
  let usageMeter: Quotas | undefined;
  const metrics = metricsAt === null ? null : new KeyswapMetrics({
    openConnections: () => proxy?.openConnections ?? 0,
    cache: () => secrets?.stats ?? { hits: 0, misses: 0, staleServed: 0 },
    auditHealthy: () => audit?.isHealthy ?? false,
    usage: () => usageMeter?.states() ?? [],
  }, VERSION);

  const backend = await openBackends(config, { ...io.env }, (m) => log.warn(m));
  // K1: the backend holds its own copy now; the block /proc/<pid>/environ shows any same-user process (an agent
  // this keyswap runs among them) keeps no value of it.
  const material = backendMaterialNames(io.env, config);
  // A copy on the heap first: what reads process.env later (the AWS SDK's credential chain) still finds it, while
  // the block /proc/<pid>/environ shows is blanked.
  for (const name of material) if (io.env[name] !== undefined) process.env[name] = io.env[name];
  const cleared = clearInitialEnvironment(material);
  if (cleared.kind === 'failed') log.warn({ names: material, why: cleared.why }, 'backend material could not be cleared from keyswap\'s initial environment: same-user processes can read it at /proc/<pid>/environ');
  secrets = new SecretCache(backend, {
    ...(metrics ? { onBackendCall: (ms: number, ok: boolean) => metrics.onBackendCall(ms, ok) } : {}),
    ttlMs: config.cache.ttlSeconds * 1000,
    jitterMs: config.cache.jitterSeconds * 1000,
    maxEntries: config.cache.maxEntries,
    maxStaleMs: config.cache.maxStaleSeconds * 1000,
  });
  const keyAt = auditKeyLocation(config, io.env);
  const headMark = headMarkFile(config.stateDir);
  const auditKey = await loadAuditKey(keyAt.file, { create: keyAt.create });
  // Alerts read the audit events as they are written (alerts/events.ts says which are alerts); set up below.
  let alerter: Alerter | null = null;
  // The console's live view reads the same records, as they are written.
  const feed = new DecisionFeed();
  // audit.format: ocsf: an OCSF-mapped copy beside the chain, fed the lines the chain has on disk.
  const ocsf = config.audit.format === 'ocsf' ? new OcsfCopy(config.audit.path, VERSION, (err) => log.error({ err: err.message }, 'the OCSF copy of the audit log could not be written; the chain is unaffected (rebuild the copy with keyswap audit ocsf)')) : null;
  audit = await AuditWriter.open(config.audit.path, {
    key: auditKey,
    // Replicas writing under one audit key each name their own chain: KEYSWAP_CHAIN_NAME (a pod's name), else the host's.
    chainId: chainIdOf(io.env.KEYSWAP_CHAIN_NAME ?? hostname(), randomBytes(4).toString('hex')),
    lastHead: await readHeadMark(headMark, config.audit.path),
    maxBytes: config.audit.maxBytes,
    observer: { event: (e) => { metrics?.onAuditEvent(e); alerter?.onAudit(e); feed.onAudit(e); }, write: (ms) => metrics?.onAuditWrite(ms), ...(ocsf === null ? {} : { lines: (text: string) => ocsf.lines(text) }) },
  });
  // Values keyswap writes itself (rotated refresh tokens) are never dropped: one that cannot be saved waits here.
  const pending = await PendingWrites.open(secrets, path.join(config.stateDir, PENDING_WRITES_FILE), log);
  const source = { get: (name: string) => pending.get(name), fresh: (name: string) => pending.fresh(name), store: (name: string, value: Secret) => pending.store(name, value) };
  const upstream = new UpstreamClient(config.upstream, extraCaPem, source);
  // Quota counts, kept in state_dir/usage.json across restarts (usage/usage-file.ts says why not the audit log).
  let usageFile: UsageFileWriter | null = null;
  // shared_state: rate limits, quotas and minted credentials shared by the replicas through Redis (shared/).
  const shared = config.sharedState === null ? null : await openSharedState(config.sharedState, {
    quotas: config.usage,
    secret: (name) => pending.get(name),
    log,
    onState: (available, reason) => { void audit?.appendLazy({ type: 'shared_state', state: available ? 'available' : 'unavailable', fallback: config.sharedState?.onUnavailable ?? 'refuse', reason }).catch(() => {}); },
    quotasChanged: () => usageFile?.changed(),
  }).catch(async (err: Error) => {
    await audit?.close();
    throw new CliError(`${config.file}: shared_state: ${err.message}`, EXIT.runtime);
  });
  const limiter = shared?.rates ?? new RateLimiter();
  const usage = shared?.quotas ?? new UsageMeter(config.usage, restoredCounts(await readUsageFile(config.stateDir).catch((err: Error) => {
    throw new CliError(`${err.message}`, EXIT.runtime);
  })), () => usageFile?.changed());
  usageFile = new UsageFileWriter(config.stateDir, () => usage.states(), log);
  usageMeter = usage;
  // The one mutable reference: a reload swaps it between requests; each request reads it once, at entry.
  if (config.alerts.webhooks.length > 0 || config.alerts.email !== null) {
    const queue = await AlertQueue.open(config.stateDir).catch(async (err: Error) => {
      await audit?.close();
      throw new CliError(err.message, EXIT.runtime);
    });
    alerter = new Alerter({
      queue,
      webhooks: config.alerts.webhooks,
      secret: (name) => pending.get(name),
      // keyswap's own upstream client: strict TLS, upstream.resolve and the parent proxy as for any upstream.
      post: async (url, headers, body) => (await tokenTransport(snapshot.upstream).send(url, { method: 'POST', headers, body })).status,
      audit: (e) => { void audit?.appendLazy(e).catch(() => {}); },
      log,
      ...(config.alerts.email === null ? {} : { email: { sink: { id: `smtp://${isIP(config.alerts.email.host) === 6 ? `[${config.alerts.email.host}]` : config.alerts.email.host}:${config.alerts.email.port}`, events: config.alerts.email.events }, send: mailSender(config.alerts.email, config.upstream, (n) => pending.get(n)) } }),
    });
  }
  usage.onCrossing = ({ quota, used, kind }) => alerter?.raise(kind === 'warning' ? 'usage_warning' : 'usage_exhausted', { quota: quota.name, used, limit: quota.limit, period: quota.period });
  // What operators decide while keyswap runs (control/): read back from state_dir, so a lockdown survives a restart.
  const operatorRecord = await readOperatorFile(config.stateDir).catch(async (err: Error) => {
    await audit?.close();
    throw new CliError(err.message, EXIT.runtime);
  });
  const operator: Operator = new Operator({
    stateDir: config.stateDir,
    record: operatorRecord,
    audit: (e) => (audit as AuditWriter).append(e),
    configuredClients: () => base.config.clients,
    clientsChanged: () => {
      snapshot = withOperator(base);
      proxy?.configChanged();
      feed.changed();
    },
  });
  operator.approvals.onChange = () => feed.changed();
  operator.access.onChange = () => feed.changed();
  if (operatorRecord.lockdown !== null) log.warn({ since: operatorRecord.lockdown.since, reason: operatorRecord.lockdown.reason }, 'lockdown is on: every request that would carry a secret is refused (keyswap lockdown --off lifts it)');
  // The config as read (base) and as in force: its clients less those revoked, plus the sessions (control/operator.ts).
  const withOperator = (b: Snapshot): Snapshot => ({ ...b, config: { ...b.config, clients: operator.clients() } });
  let base: Snapshot = { config, policy: compilePolicy(config), secrets: source, audit, upstream, limiter, mint: mintServiceFor(upstream, audit, source, undefined, shared?.minting ?? undefined), scrubbers: new ScrubberCache(), usage, operator };
  let snapshot: Snapshot = withOperator(base);

  const identity = await Identity.open(config.stateDir, io.env.CREDENTIALS_DIRECTORY).catch(async (err: Error) => {
    await audit.close();
    throw new CliError(`keyswap's identity key (${IDENTITY_CREDENTIAL} credential, else ${config.stateDir}/${IDENTITY_KEY_FILE}): ${err.message}`, EXIT.runtime);
  });
  try {
    const tlsAt = config.listenTls === null ? null : { ...config.listenTls, listen: opts.listenTls ?? config.listenTls.listen };
    proxy = await startProxy({
      host: listenAt.host, port: listenAt.port, snapshot: () => snapshot, leaves, log, identity,
      ...(opts.inheritedFd === undefined ? {} : { fd: opts.inheritedFd }),
      ...(tlsAt === null ? {} : { tls: { host: tlsAt.listen.host, port: tlsAt.listen.port, certFile: tlsAt.certFile, keyFile: tlsAt.keyFile, clientCaFile: tlsAt.clientCaFile, handshakeMs: config.timeouts.tlsHandshakeMs } }),
      // Only the serving keyswap: the egress lock redirects to the config's fixed port.
      ...(config.transparent === null || !opts.writePid ? {} : { transparent: { host: config.transparent.listen.host, port: config.transparent.listen.port, httpPort: config.transparent.listenHttp?.port ?? null, uid: config.transparent.uid, client: () => transparentClient(snapshot, config.transparent?.client ?? null) } }),
    });
  } catch (err) {
    await audit.close();
    throw new CliError(`cannot listen on ${listenAt.host}:${listenAt.port}: ${(err as Error).message}`, EXIT.runtime);
  }
  // An inherited socket's address is the one systemd bound: held to the same loopback rule as the config's.
  if (opts.inheritedFd !== undefined) {
    try {
      checkListenAddress('proxy', 'the socket systemd handed over (keyswap.socket: ListenStream)', proxy.address.host, opts.allowNonLoopback);
    } catch (err) {
      await proxy.close();
      await audit.close();
      throw err;
    }
  }
  const listen = `${proxy.address.host}:${proxy.address.port}`;
  let metricsServer: MetricsServer | null = null;
  if (metrics !== null && metricsAt !== null) {
    try {
      metricsServer = await startMetricsServer(metricsAt.host, metricsAt.port, metrics.registry);
    } catch (err) {
      await proxy.close();
      await audit.close();
      throw new CliError(`cannot serve metrics on ${metricsAt.host}:${metricsAt.port}: ${(err as Error).message}`, EXIT.runtime);
    }
  }
  // proxy_start must be durable: a proxy that cannot audit must not serve (K4, K6).
  await audit.append({ type: 'proxy_start', pid: process.pid, version: VERSION, listen, config: config.file });
  alerter?.start();
  // What the audit log cannot say about itself (it is failing), and expiries nothing else watches, are looked at here.
  let auditWasHealthy = true;
  const told = new Set<string>();
  const watchHealth = (): void => {
    if (alerter === null) return;
    const healthy = audit?.isHealthy ?? false;
    if (auditWasHealthy && !healthy) alerter.raise('audit_failed', { reason: 'the audit log cannot be written: requests that would carry a secret are refused' });
    auditWasHealthy = healthy;
    const expiring = expiringCredentials([
      { credential: 'keyswap CA', expiresAtMs: ca.notAfter.getTime() },
      // The file's clients: a session's end is its command's, not a credential to renew.
      ...[...(base.config.clients?.values() ?? [])].map((c) => ({ credential: `client ${c.name}`, expiresAtMs: c.expiresAtMs })),
    ], Date.now());
    for (const e of expiring) {
      const key = `${e.credential}@${e.expires}`;
      if (told.has(key)) continue;
      told.add(key);
      alerter.raise('credential_expiring', e);
    }
  };
  const healthTimer = setInterval(watchHealth, 1_000);
  healthTimer.unref();
  watchHealth();
  const anchor = anchorAuditHead(audit, config.audit.path, headMark, log);
  await anchor.mark();

  // Rotation: logrotate (or an operator) moves the file away and sends SIGUSR1; the new file's first record
  // links to the last hash of the old one.
  const onRotate = (): void => {
    ocsf?.reopen();
    audit.reopen().then(
      () => {
        log.info({ path: config.audit.path }, 'audit log reopened');
        void anchor.mark();
      },
      (err: unknown) => log.error({ err: (err as Error).message }, 'audit log reopen failed; still writing to the previous file'),
    );
  };
  process.on('SIGUSR1', onRotate);

  // Reload: swap in the re-read config (reload-snapshot.ts says what is refused) between requests, audited either way.
  let reloading = Promise.resolve();
  const onReload = (): void => {
    reloading = reloading.then(async () => {
      const errors = await reloadedSnapshot(base, ca, leaves).then(
        (next) => {
          base = next;
          snapshot = withOperator(next);
          backend.reroute(next.config);
          usage.configure(next.config.usage);
          // A reload is also how an operator says "use the values I just stored": cached ones are dropped.
          secrets?.flush();
          return [];
        },
        (err: unknown) => reloadErrors(err),
      );
      log[errors.length === 0 ? 'info' : 'error']({ errors }, errors.length === 0 ? 'configuration reloaded' : 'reload refused; the running configuration stays');
      await audit.append({ type: 'config_reload', ok: errors.length === 0, config: config.file, errors }).catch(() => {});
      // After its record: what a client the new configuration no longer admits holds open is closed now.
      if (errors.length === 0) proxy?.configChanged();
    });
  };
  process.on('SIGHUP', onReload);


  // The control API (control/): the operator's CLI on state_dir/control.sock.
  let lastCheck: AuditCheck | null = null;
  const controlDeps: ControlDeps = {
    operator, feed, snapshot: () => snapshot, version: VERSION,
    loginUrl: () => {
      if (consoleServer === null) throw new ControlError(409, `${config.file} has no ui: section; add  ui: { listen: 127.0.0.1:14323 }  and restart keyswap`);
      return `${consoleServer.url}/login#${consoleServer.issueLogin()}`;
    },
    explain: (q) => explainForOperator(snapshot.config, q),
    audit: {
      path: config.audit.path,
      head: () => audit.head,
      healthy: () => audit.isHealthy,
      anchor: () => readHeadMark(headMark, config.audit.path),
      verify: async () => {
        const files = [...rotatedFiles(config.audit.path), config.audit.path];
        const v = await verifyAuditFiles(files, { key: auditKey });
        lastCheck = { at: new Date().toISOString(), intact: v.intact, records: v.records, head: v.head === null ? null : `${v.head.seq}:${v.head.hash}`, findings: v.findings.slice(0, 20).map(describeFinding) };
        return lastCheck;
      },
    },
  };
  let control: ControlSocket | null = null;
  // The operator's console (console/), over the same API, when `ui:` asks for it.
  let consoleServer: RunningConsole | null = null;
  if (opts.writePid) {
    try {
      control = await startControlSocket(config.stateDir, controlDeps);
      if (config.ui !== null) consoleServer = await startConsole(config.ui.listen, controlDeps, (e) => audit.append(e));
    } catch (err) {
      await control?.close();
      await proxy.close();
      await metricsServer?.close();
      await audit.close();
      throw new CliError(`${control === null ? 'control socket' : `console (ui.listen ${config.ui?.listen.host}:${config.ui?.listen.port})`}: ${(err as Error).message}`, EXIT.runtime);
    }
  }

  // Last: the banner tells the world keyswap is ready, so every handler must exist before it.
  const proxyUrl = `http://${proxy.address.host.includes(':') ? `[${proxy.address.host}]` : proxy.address.host}:${proxy.address.port}`;
  // The pid (for `keyswap reload`) and the address actually bound (for `keyswap run`, which may find port 0 in the
  // config).
  if (opts.writePid) await writeFileAtomic(pidFile(config.stateDir), `${process.pid}\n${proxyUrl}\n`, 0o600);

  opts.announce(
    `keyswap ${VERSION} listening on ${proxyUrl}\n` +
      (proxy.transparentAddress === null ? '' : `transparent listener: ${proxy.transparentAddress.host}:${proxy.transparentAddress.port} (agents the egress lock redirects)\n`) +
      (proxy.tlsAddress === null ? '' : `TLS listener: https://${proxy.tlsAddress.host.includes(':') ? `[${proxy.tlsAddress.host}]` : proxy.tlsAddress.host}:${proxy.tlsAddress.port} (agents identified by certificate or token)\n`) +
      `CA certificate: ${ca.certPath}\n` +
      (metricsServer ? `metrics: ${metricsServer.url}\n` : '') +
      (consoleServer ? `console: ${consoleServer.url} (log in with: keyswap ui)\n` : '') +
      `# Agents behind keyswap need this environment (or run them with \`keyswap run -- CMD\`):\n` +
      `${exportLines(agentEnvironment({ proxyUrl, caPath: ca.certPath, bundlePath, secrets: config.secrets }))}\n`,
  );

  const tlsProxyUrl = proxy.tlsAddress === null ? null : `https://${proxy.tlsAddress.host.includes(':') ? `[${proxy.tlsAddress.host}]` : proxy.tlsAddress.host}:${proxy.tlsAddress.port}`;
  return {
    proxyUrl,
    tlsProxyUrl,
    caPath: ca.certPath,
    bundlePath,
    operator,
    async stop(reason: string): Promise<void> {
      process.off('SIGUSR1', onRotate);
      await control?.close();
      await consoleServer?.close();
      // Held requests are answered (403 approval_timeout) before the drain waits for them.
      operator.approvals.stop();
      process.off('SIGHUP', onReload);
      if (opts.writePid) await unlink(pidFile(config.stateDir)).catch(() => {});
      await reloading;
      log.info({ reason }, 'stopping: draining in-flight requests');
      await proxy.close();
      // Background renewals too: their exchange is recorded, and a rotated refresh token stored, before exit.
      await Promise.race([snapshot.mint.settled(), new Promise((r) => setTimeout(r, 15_000).unref())]);
      await metricsServer?.close();
      upstream.close();
      anchor.stop();
      clearInterval(healthTimer);
      // The queue is saved before the log closes: what was not delivered goes out after the next start.
      await alerter?.stop();
      await audit.append({ type: 'proxy_stop', pid: process.pid, reason }).catch(() => {});
      await anchor.mark();
      await audit.close();
      await ocsf?.close();
      await pending.close();
      await usageFile?.flush();
      await shared?.close();
      await backend.close?.();
      log.info('stopped');
    },
  };
}



/** Who a transparently redirected agent is: nobody in particular without `clients:`, else the configured client, if still admitted. */
function transparentClient(snap: Snapshot, name: string | null): { readonly ok: boolean; readonly client: ClientSpec | null } {
  const clients = snap.config.clients;
  if (clients === null) return { ok: true, client: null };
  const client = name === null ? undefined : clients.get(name);
  return client === undefined || (client.expiresAtMs !== null && Date.now() >= client.expiresAtMs) ? { ok: false, client: null } : { ok: true, client };
}
