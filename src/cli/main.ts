#!/usr/bin/env node
import { AuditKeyError, AuditLogBusy, AuditWriteFailed } from '../audit/index.js';
import { ConfigError, ConfigErrors, LooseWriteAccessError } from '../config/index.js';
import { BackendConfigError } from '../secrets/index.js';
import { TlsStateError } from '../tls/index.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { VERSION } from './version.js';

const USAGE = `keyswap ${VERSION}: agents hold placeholders; keyswap swaps in real secrets only for bound, audited, verified requests.

usage: keyswap <command> [options]

commands:
  init         create keyswap.yaml, the CA and the store; --from-env .env moves a .env's keys in
  serve        run the proxy (--config FILE, default ./keyswap.yaml; --metrics 127.0.0.1:9464)
  run          run -- CMD …: start CMD behind keyswap (proxy, CA, Node preload, placeholders)
  env          print that environment as export lines: eval "$(keyswap env)"
  quickstart   first run: write keyswap.yaml if missing, then serve (what \`npm start\` runs)
  secret       set | list | rm | rekey values in the embedded encrypted store
  check        lint the config beyond its schema (exit 0 clean, 1 findings, 2 invalid)
  explain      explain METHOD URL [-H 'Name: value']…: the decision keyswap would take, offline
  doctor       check CA, permissions, backend, audit log and this shell's variables, with fixes
  demo         a self-contained tour on loopback: what the agent sent, what the API got, the audit line
  placeholder  print a fresh placeholder (--prefix sk-)
  audit        verify FILE… (each replica's hash chain) | tail FILE [N] | ocsf FILE
  ca           show (where the CA is, its fingerprint) | rotate (a new CA key and certificate)
  reload       ask the running keyswap to re-read its config (SIGHUP), after validating it
  install      as root: run keyswap as a service under its own user (--config FILE: the quick start's config)
  uninstall    as root: stop and remove the service; --purge also removes the store, its key and the user
  client       add NAME --secrets A,B [--expires 90d] | list | revoke NAME (agent identities; revoke is live)
  lockdown     [--reason TEXT] | --off: stop every use of a secret at once, on every connection
  approvals    the requests waiting for an operator; approve ID [--remember 1h] | deny ID answers one
  ui           print a one-time login URL for the console (ui: listen: in the config)
  mcp          serve: an MCP server for the agent (keyswap_status, keyswap_explain), read-only
  oauth        login NAME: a refresh token for an oauth2_refresh secret (PKCE, loopback redirect), stored in the backend
  egress       lock --uid UID | unlock --uid UID | status: as root, an agent's user may reach only keyswap
  usage        each usage: quota: used, limit, period end, state
  alerts       test [--event E] (a signed sample to every webhook)
  help         show this text

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.`;

type Command = (args: string[], io: CliIo) => Promise<number>;
interface Loaded { readonly run: Command; readonly usage?: string }

// Each command's module is loaded when it runs: `serve` then never holds the code (and the libraries) of the
// other sixteen. Measured: a fresh `serve` took 94 MB RSS against the bare Node MITM's 76 MB.
const COMMANDS: Record<string, () => Promise<Loaded>> = {
  serve: async () => { const m = await import('./serve-command.js'); return { run: m.serve, usage: m.SERVE_USAGE }; },
  quickstart: async () => ({ run: (await import('./quickstart-command.js')).quickstart }),
  secret: async () => { const m = await import('./secret-command.js'); return { run: m.secretCommand, usage: m.SECRET_USAGE }; },
  placeholder: async () => ({ run: (await import('./placeholder.js')).placeholderCommand }),
  audit: async () => { const m = await import('./audit-command.js'); return { run: m.auditCommand, usage: m.AUDIT_USAGE }; },
  ca: async () => { const m = await import('./ca-command.js'); return { run: m.caCommand, usage: m.CA_USAGE }; },
  client: async () => { const m = await import('./client-command.js'); return { run: m.clientCommand, usage: m.CLIENT_USAGE }; },
  usage: async () => { const m = await import('./usage-command.js'); return { run: m.usageCommand, usage: m.USAGE_USAGE }; },
  lockdown: async () => { const m = await import('./operator-command.js'); return { run: m.lockdownCommand, usage: m.LOCKDOWN_USAGE }; },
  approvals: async () => { const m = await import('./operator-command.js'); return { run: m.approvalsCommand, usage: m.APPROVALS_USAGE }; },
  approve: async () => { const m = await import('./operator-command.js'); return { run: m.approveCommand, usage: m.APPROVALS_USAGE }; },
  deny: async () => { const m = await import('./operator-command.js'); return { run: m.denyCommand, usage: m.APPROVALS_USAGE }; },
  egress: async () => { const m = await import('./egress-command.js'); return { run: m.egressCommand, usage: m.EGRESS_USAGE }; },
  mcp: async () => { const m = await import('./mcp-command.js'); return { run: m.mcpCommand, usage: m.MCP_USAGE }; },
  oauth: async () => { const m = await import('./oauth-command.js'); return { run: m.oauthCommand, usage: m.OAUTH_USAGE }; },
  ui: async () => { const m = await import('./operator-command.js'); return { run: m.uiCommand, usage: m.UI_USAGE }; },
  alerts: async () => { const m = await import('./alerts-command.js'); return { run: m.alertsCommand, usage: m.ALERTS_USAGE }; },
  reload: async () => ({ run: (await import('./reload-command.js')).reloadCommand }),
  init: async () => { const m = await import('./init-command.js'); return { run: m.initCommand, usage: m.INIT_USAGE }; },
  check: async () => { const m = await import('./check-command.js'); return { run: m.checkCommand, usage: m.CHECK_USAGE }; },
  doctor: async () => { const m = await import('./doctor-command.js'); return { run: m.doctorCommand, usage: m.DOCTOR_USAGE }; },
  demo: async () => ({ run: (await import('./demo-command.js')).demoCommand }),
  explain: async () => { const m = await import('./explain-command.js'); return { run: m.explainCommand, usage: m.EXPLAIN_USAGE }; },
  run: async () => { const m = await import('./run-command.js'); return { run: m.runCommand, usage: m.RUN_USAGE }; },
  env: async () => { const m = await import('./run-command.js'); return { run: m.envCommand, usage: m.RUN_USAGE }; },
  install: async () => { const m = await import('./install-command.js'); return { run: m.installCommand, usage: m.INSTALL_USAGE }; },
  uninstall: async () => { const m = await import('./uninstall-command.js'); return { run: m.uninstallCommand, usage: m.UNINSTALL_USAGE }; },
};

async function main(argv: string[]): Promise<number> {
  const io: CliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: { ...process.env }, cwd: process.cwd() };
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(`${USAGE}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === 'version') {
    io.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (load === undefined) {
    io.stderr.write(`keyswap: unknown command '${name}'\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const command = await load();
  // After `--`, the arguments are the child's (keyswap run -- cmd --help).
  const own = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
  if (own.includes('--help') || own.includes('-h')) {
    io.stdout.write(`${command.usage ?? USAGE}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    const [message, code] = describe(err);
    io.stderr.write(`${message}\n`);
    return code;
  }
}

/** Node's parseArgs messages in one plain sentence: "unknown option --bogus", not advice about positionals. */
function parseArgsMessage(err: TypeError): string {
  const code = (err as { code?: string }).code;
  const option = /'(-[^']*)'/.exec(err.message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) return `option ${option.split(' ')[0]} needs a value`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument${/'([^']*)'/.exec(err.message)?.[1] ? ` '${/'([^']*)'/.exec(err.message)?.[1]}'` : ''}`;
  return err.message;
}

/** Maps every error a user can cause to one clear message and an exit code; only bugs print a stack. */
function describe(err: unknown): [string, number] {
  // A config refused only for who can write it is not "invalid": say just that, one line per file.
  if (err instanceof ConfigErrors && err.errors.every((e) => e instanceof LooseWriteAccessError)) return [err.errors.map((e) => `keyswap: refused: ${e.message}`).join('\n'), EXIT.usage];
  if (err instanceof ConfigErrors) return [`keyswap: invalid configuration:\n${err.errors.map((e) => `  ${e.message}`).join('\n')}`, EXIT.usage];
  if (err instanceof ConfigError) return [`keyswap: invalid configuration:\n  ${err.message}`, EXIT.usage];
  if (err instanceof CliError) return [`keyswap: ${err.message}`, err.exitCode];
  if (err instanceof BackendConfigError) return [`keyswap: ${err.message}`, EXIT.usage];
  if (err instanceof TlsStateError) return [`keyswap: ${err.message}`, EXIT.runtime];
  if (err instanceof AuditKeyError || err instanceof AuditLogBusy) return [`keyswap: ${err.message}`, EXIT.runtime];
  if (err instanceof AuditWriteFailed) return [`keyswap: ${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}`, EXIT.runtime];
  if (err instanceof TypeError && typeof (err as { code?: unknown }).code === 'string' && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
    return [`keyswap: ${parseArgsMessage(err)}\nRun 'keyswap help' for usage.`, EXIT.usage];
  }
  const sys = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof sys.code === 'string' && typeof sys.syscall === 'string') {
    return [`keyswap: ${sys.syscall} ${sys.path ?? ''} failed: ${sys.code}${sys.code === 'EFBIG' || sys.code === 'ENOSPC' ? ' (disk or file-size limit reached)' : ''}`, EXIT.runtime];
  }
  return [`keyswap: internal error (this is a bug; please report it):\n${err instanceof Error ? err.stack : String(err)}`, EXIT.runtime];
}

// Exit explicitly: every command has closed what it owns by now, but a backend SDK call that never answered
// (the Bitwarden SDK has no timeouts) would otherwise keep the process alive after a clean shutdown. On Linux
// stdout and stderr writes to pipes, files and terminals are synchronous, so nothing printed is lost.
process.exit(await main(process.argv.slice(2)));
