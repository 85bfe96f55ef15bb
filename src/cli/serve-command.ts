import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type HostPort } from '../config/index.js';
import { createLogger, type Logger } from '../log.js';
import { parseListenAddress } from '../wire/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { checkListenAddress } from './loopback.js';
import { start } from './runtime.js';

const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'];

export const SERVE_USAGE = `usage: keyswap serve [--config FILE] [--metrics HOST:PORT] [--allow-non-loopback] [--log-level LEVEL]

Starts the proxy. FILE defaults to ./keyswap.yaml.
--metrics 127.0.0.1:9464 serves Prometheus metrics at http://127.0.0.1:9464/metrics (loopback only, off by default).`;

/**
 * `keyswap serve`: builds everything from the config, in order, and owns every resource it opens; nothing is
 * global. Resolves with the exit code once the proxy has stopped (SIGINT/SIGTERM).
 */
export async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', default: 'keyswap.yaml' },
      'allow-non-loopback': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      metrics: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const metricsAt = values.metrics === undefined ? null : metricsAddress(values.metrics, values['allow-non-loopback']);
  const config = await loadConfig(path.resolve(io.cwd, values.config));
  // keyswap's own outbound calls never go through a proxy: Node's https ignores these variables, but the
  // Bitwarden SDK reads them, and pointed at keyswap itself they would loop its backend calls through itself.
  for (const name of PROXY_VARIABLES) delete process.env[name];
  const log = createLogger(values['log-level']);
  for (const w of config.warnings) log.warn(w);
  // Order matters: the handlers exist before anyone can learn the address, so a SIGTERM sent the moment the
  // banner appears drains cleanly instead of killing the process with the default action.
  const stopSignal = waitForStopSignal(log);
  const inheritedFd = listenFdFromSystemd(io.env);
  if (inheritedFd !== undefined) log.info({ fd: inheritedFd }, 'listening on the socket systemd handed over (keyswap.socket)');
  const running = await start(config, io, log, { metricsAt, allowNonLoopback: values['allow-non-loopback'], announce: (text) => io.stdout.write(text), writePid: true, ...(inheritedFd === undefined ? {} : { inheritedFd }) });
  await stopSignal;
  await running.stop('signal');
  return EXIT.ok;
}

/**
 * systemd's socket activation (sd_listen_fds): LISTEN_PID names this process and LISTEN_FDS counts the sockets,
 * the first at fd 3. keyswap.socket hands over one, the proxy's listener; it stays bound while keyswap restarts.
 */
function listenFdFromSystemd(env: Readonly<Record<string, string | undefined>>): number | undefined {
  if (env.LISTEN_PID !== String(process.pid)) return undefined;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1) return undefined;
  if (count > 1) throw new CliError(`systemd handed over ${count} sockets; keyswap.socket must have one ListenStream= (the proxy's listen address)`, EXIT.usage);
  // Not passed on to anything keyswap starts.
  delete process.env.LISTEN_PID;
  delete process.env.LISTEN_FDS;
  delete process.env.LISTEN_FDNAMES;
  return 3;
}

/** `--metrics HOST:PORT`: a loopback address unless the operator allowed otherwise, as for the proxy itself. */
function metricsAddress(text: string, allowNonLoopback: boolean): HostPort {
  const at = parseListenAddress(text);
  if (at === null) throw new CliError(`--metrics ${text}: expected HOST:PORT, e.g. --metrics 127.0.0.1:9464`, EXIT.usage);
  checkListenAddress('metrics', `--metrics ${text}`, at.host, allowNonLoopback);
  return at;
}

function waitForStopSignal(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'signal received');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second signal while draining means "now": the audit log is already synced per request.
      process.once('SIGINT', () => process.exit(EXIT.runtime));
      process.once('SIGTERM', () => process.exit(EXIT.runtime));
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
