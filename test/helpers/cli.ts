import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';

export const REPO = path.resolve(__dirname, '../..');
/** The built CLI: tests run what a user runs, not the sources. */
export const KEYSWAP = path.join(REPO, 'dist/cli/main.js');

export interface CliOptions {
  /** Working directory (default: the test runner's, the repository). */
  readonly cwd?: string;
  /**
   * keyswap's environment beyond PATH. Nothing else of the runner's environment is passed: a KEYSWAP_* or HOME of
   * the shell that started the tests must not change what a test sees.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Standard input (blocking and collected runs). */
  readonly input?: string;
  /** A bound, not a wait: past it the process gets SIGTERM (30 s for blocking runs, none otherwise). */
  readonly timeoutMs?: number;
  /** A command keyswap runs under (`setpriv …`, `sh -c '…; exec "$0" "$@"'`): node and the CLI follow its arguments. */
  readonly via?: readonly string[];
  /** Run as this user and group (as `spawn`'s uid and gid): for tests run as root about what another user may do. */
  readonly uid?: number;
  readonly gid?: number;
  /** Keep only the last this many characters of each stream (a long-running keyswap logs without end). */
  readonly keepChars?: number;
}

function command(args: readonly string[], opts: CliOptions): [string, string[]] {
  const argv = [process.execPath, KEYSWAP, ...args];
  const [first, ...rest] = opts.via ?? [];
  return first === undefined ? [process.execPath, argv.slice(1)] : [first, [...rest, ...argv]];
}

const envOf = (opts: CliOptions): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env });

/**
 * Runs the CLI to its end, blocking this process. Only for commands that need nothing served by this process
 * (an upstream or authority started by the test stalls while this waits: use `cliCollect` then).
 */
export function cli(args: readonly string[], opts: CliOptions = {}): SpawnSyncReturns<string> {
  const [file, argv] = command(args, opts);
  return spawnSync(file, argv, { cwd: opts.cwd, env: envOf(opts), input: opts.input, uid: opts.uid, gid: opts.gid, encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to its end without blocking this process's event loop; the output once all of it is read. */
export async function cliCollect(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const p = startCli(args, opts);
  const code = await p.closed;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code when the process exits (output may still be in flight). */
  readonly exited: Promise<number | null>;
  /** Resolves with the exit code once the process exited and its output is fully read. */
  readonly closed: Promise<number | null>;
  /** The first match of `pattern` (a string matches as itself) on stdout; rejects if the process exits first or the bound runs out. */
  waitForStdout(pattern: RegExp | string, ms?: number): Promise<RegExpExecArray>;
  /** The port a `serve` announces it listens on. */
  listeningPort(ms?: number): Promise<number>;
  /** Sends `signal` (SIGKILL after 10 s) and resolves with the exit code once the output is fully read. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the CLI and keeps it running; the caller stops it. */
export function startCli(args: readonly string[], opts: CliOptions = {}): CliProcess {
  const [file, argv] = command(args, opts);
  const child = spawn(file, argv, { cwd: opts.cwd, env: envOf(opts), uid: opts.uid, gid: opts.gid, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  let out = '';
  let err = '';
  const keep = (text: string): string => (opts.keepChars === undefined ? text : text.slice(-opts.keepChars));
  child.stdout?.on('data', (c: Buffer) => { out = keep(out + c.toString()); });
  child.stderr?.on('data', (c: Buffer) => { err = keep(err + c.toString()); });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
  });
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  if (opts.timeoutMs !== undefined) {
    const bound = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs);
    void closed.then(() => clearTimeout(bound));
  }
  let stopping: Promise<number | null> | null = null;
  const p: CliProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    closed,
    waitForStdout(wanted, ms = 15_000) {
      const pattern = typeof wanted === 'string' ? new RegExp(wanted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : wanted;
      return new Promise((resolve, reject) => {
        const look = (): boolean => {
          const m = pattern.exec(out);
          if (m === null) return false;
          done();
          resolve(m);
          return true;
        };
        const onData = (): void => { look(); };
        const timer = setTimeout(() => { done(); reject(new Error(`no ${pattern} on stdout within ${ms} ms\nstdout:\n${out}\nstderr:\n${err}`)); }, ms);
        const done = (): void => { clearTimeout(timer); child.stdout?.off('data', onData); };
        // Registered after the collector above, so `out` already holds the chunk this listener is told about.
        child.stdout?.on('data', onData);
        if (look()) return;
        // On close, not exit: the last of stdout may still be in flight when the exit is reported.
        void closed.then((code) => {
          if (look()) return;
          done();
          reject(new Error(`keyswap exited with ${code} before ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
        });
      });
    },
    async listeningPort(ms) {
      const m = await p.waitForStdout(/listening on http:\/\/127\.0\.0\.1:(\d+)/, ms);
      return Number(m[1]);
    },
    stop(signal = 'SIGTERM') {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(timer);
        await closed;
        return code;
      })();
      return stopping;
    },
  };
  return p;
}
