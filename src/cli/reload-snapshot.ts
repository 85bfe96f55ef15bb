import { readFile } from 'node:fs/promises';
import { ConfigErrors, loadConfig, type Config } from '../config/index.js';
import { compilePolicy } from '../policy/index.js';
import { mintServiceFor, UpstreamClient, type Snapshot } from '../proxy/index.js';
import type { LeafCache, LocalCa } from '../tls/index.js';
import { requireCoverage } from './ca-requirements.js';
import { CliError, EXIT } from './exit-codes.js';

/**
 * SIGHUP: the running snapshot with the config re-read and validated. Anything that needs new resources (listen
 * address, state, backend, audit file, cache, timeouts) is refused with "restart to apply", and so is a host the
 * CA does not cover; an invalid file changes nothing.
 */
export async function reloadedSnapshot(current: Snapshot, ca: LocalCa, leaves: LeafCache): Promise<Snapshot> {
  const next = await loadConfig(current.config.file);
  const was = current.config;
  const needsRestart = [
    ['listen', `${was.listen.host}:${was.listen.port}` !== `${next.listen.host}:${next.listen.port}`],
    ['listen_tls', JSON.stringify(was.listenTls) !== JSON.stringify(next.listenTls)],
    ['state_dir', was.stateDir !== next.stateDir],
    ['backend', JSON.stringify(was.backend) !== JSON.stringify(next.backend)],
    ['backends', JSON.stringify([...was.backends]) !== JSON.stringify([...next.backends])],
    ['audit', JSON.stringify(was.audit) !== JSON.stringify(next.audit)],
    ['cache', JSON.stringify(was.cache) !== JSON.stringify(next.cache)],
    ['alerts', JSON.stringify(alertsShape(was)) !== JSON.stringify(alertsShape(next))],
    ['timeouts', JSON.stringify(was.timeouts) !== JSON.stringify(next.timeouts)],
    ['ui', JSON.stringify(was.ui) !== JSON.stringify(next.ui)],
    ['transparent', JSON.stringify(was.transparent) !== JSON.stringify(next.transparent)],
    ['shared_state', JSON.stringify(was.sharedState) !== JSON.stringify(next.sharedState)],
  ].filter(([, changed]) => changed).map(([key]) => key);
  if (needsRestart.length > 0) throw new CliError(`${needsRestart.join(', ')} changed; restart keyswap to apply`, EXIT.usage);
  // Order matters: a host the CA cannot sign for is refused before any leaf is minted for it.
  requireCoverage(ca, next);
  await leaves.prewarm(boundHosts(next));
  const extraCaPem = next.upstream.extraCaFile === null ? null : await readExtraCa(next);
  // The old upstream client is left to its in-flight requests; its idle sockets time out on their own.
  const upstream = new UpstreamClient(next.upstream, extraCaPem, current.secrets);
  // Minted credentials go with the config they were minted for: a reload is also how an operator drops them.
  return { ...current, config: next, policy: compilePolicy(next), upstream, mint: mintServiceFor(upstream, current.audit, current.secrets, current.mint) };
}

/** What the alerter was built from: webhooks and mail (sets as lists, so they compare). */
function alertsShape(c: Config): unknown {
  const e = c.alerts.email;
  return [c.alerts.webhooks.map((w) => [w.url, w.signingSecret, [...w.events]]), e === null ? null : { ...e, events: [...e.events] }];
}

export function reloadErrors(err: unknown): string[] {
  if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
  if (err instanceof CliError) return [err.message];
  return [err instanceof Error ? err.message : String(err)];
}

export function boundHosts(config: Config): string[] {
  const hosts = new Set<string>();
  // A wildcard binding is served by one leaf for its pattern (policy/leafNameFor), minted here like any host.
  for (const s of config.secrets) for (const b of s.bindings) hosts.add(b.host);
  return [...hosts];
}

export async function readExtraCa(config: Config): Promise<string> {
  const file = config.upstream.extraCaFile as string;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`${config.file}: upstream.extra_ca_file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT.usage);
  }
}

