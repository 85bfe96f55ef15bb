import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempWorld, type TempWorld } from '../helpers/temp-world.js';
import { createTestCa } from '../helpers/test-ca.js';
import { CLIENTS, type ClientSpec } from './client-catalog.mjs';

// Real clients, each written as its users write it, under `keyswap run` against stand-ins for the real APIs, all
// inside a network namespace with only loopback (run-matrix.mjs). What each client got is judged here.

const HERE = path.dirname(new URL(import.meta.url).pathname);
const RUNNER = path.join(HERE, 'run-matrix.mjs');
const RUN_BOUND_MS = 300_000;

/** `unshare -n` as root (CI), `unshare -rn` as a user with user namespaces, else the reason nothing can run. */
function namespacePrefix(): { argv: string[] } | { skip: string } {
  const tries = process.getuid?.() === 0 ? [['unshare', '-n'], ['unshare', '-rn']] : [['unshare', '-rn']];
  // The namespace starts with loopback down; without ip(8) the runner could not bring it up.
  if (spawnSync('sh', ['-c', 'command -v ip'], { stdio: 'ignore' }).status !== 0) return { skip: 'ip (iproute2) is not installed; .ci/run installs it' };
  const errors: string[] = [];
  for (const argv of tries) {
    const r = spawnSync(argv[0] ?? 'unshare', [...argv.slice(1), 'true'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) return { argv };
    errors.push(`${argv.join(' ')}: ${(r.error?.message ?? r.stderr).trim() || `exit ${r.status}`}`);
  }
  return { skip: `no network namespace can be made here (${errors.join('; ')}); the client matrix needs one so no client can reach the network` };
}

const ns = namespacePrefix();
if ('skip' in ns) console.log(`client matrix skipped: ${ns.skip}`);

type Key = { real: string; placeholder: string };
type Keys = Record<'OPENAI_API_KEY' | 'ANTHROPIC_API_KEY' | 'GITHUB_TOKEN', Key>;
interface SeenRequest { api: string; method: string; path: string; via: string; key: 'real' | 'placeholder' | 'other' | 'none'; status: number; lastChunkWrittenAt: number | null }
interface ClientReport { status?: number; echo?: string | null; chunks?: number; first_chunk_at?: number | null; ttfc_ms?: number | null; readme?: string; config_holds_placeholder?: boolean }
interface ClientRun { name: string; skipped: string | null; notRun?: string; exitCode?: number | null; signal?: string | null; timedOut?: boolean; stdout?: string; stderr?: string; seconds?: number; report?: ClientReport | null; requests?: SeenRequest[] }
interface Results { phases?: Record<string, number>; keyswap: { listening: boolean; stdout: string; stderr: string; auditPath: string }; go: { seconds: number; error: string | null } | null; clients: ClientRun[] }

const alnum = (n: number): string => randomBytes(n * 2).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, n);
/** Canaries shaped like the real thing, so any shape-based handling applies to them as it would to real keys. */
const keys: Keys = {
  OPENAI_API_KEY: { real: `sk-proj-REAL${alnum(48)}`, placeholder: 'sk-PLACEHOLDER-MATRIX-OPENAI-0123456789abcdef' },
  ANTHROPIC_API_KEY: { real: `sk-ant-api03-REAL${alnum(64)}`, placeholder: 'sk-ant-PLACEHOLDER-MATRIX-0123456789abcdef' },
  GITHUB_TOKEN: { real: `ghp_REAL${alnum(32)}`, placeholder: 'ghp_PLACEHOLDER_MATRIX_0123456789abcdef' },
};
const KEY_OF_API: Record<ClientSpec['api'], Key> = { openai: keys.OPENAI_API_KEY, anthropic: keys.ANTHROPIC_API_KEY, git: keys.GITHUB_TOKEN };
const SECRET_OF_API: Record<ClientSpec['api'], keyof Keys> = { openai: 'OPENAI_API_KEY', anthropic: 'ANTHROPIC_API_KEY', git: 'GITHUB_TOKEN' };
const README = 'keyswap client matrix';

const encodings = (s: string): string[] => [s, Buffer.from(s).toString('base64'), Buffer.from(s).toString('base64url'), encodeURIComponent(s)];
const canaryForms = Object.values(keys).flatMap((k) => encodings(k.real));
const leaksIn = (text: string): boolean => canaryForms.some((f) => text.includes(f));
/** Diagnostics go into CI logs: a real key in them would be the very leak under test, so they are redacted first. */
const redact = (text: string): string => canaryForms.reduce((t, f) => t.split(f).join('<REAL KEY>'), text);

let dir = '';
let world: TempWorld | undefined;
let results: Results | null = null;
let runnerFailure = '';
let auditText = '';
const outcomes = new Map<string, string>();
const started = Date.now();

describe.skipIf('skip' in ns)('client matrix: real clients under keyswap run, in a network namespace with only loopback', () => {
  beforeAll(async () => {
    if (!('argv' in ns)) return;
    world = makeTempWorld('matrix');
    dir = world.dir;
    const ca = createTestCa('keyswap client matrix stand-in CA');
    const input = {
      dir,
      tls: { openai: ca.issue(['api.openai.com']), anthropic: ca.issue(['api.anthropic.com']), github: ca.issue(['github.com']) },
      testCaPem: ca.certPem,
      keys,
      readme: README,
    };
    const inputPath = path.join(dir, 'input.json');
    const resultsPath = path.join(dir, 'results.json');
    writeFileSync(inputPath, JSON.stringify(input), { mode: 0o600 });
    const [cmd, ...args] = [...ns.argv, process.execPath, RUNNER, inputPath, resultsPath];
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(cmd ?? 'unshare', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      let stderr = '';
      p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      const timer = setTimeout(() => p.kill('SIGKILL'), RUN_BOUND_MS);
      p.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    if (run.code !== 0 || !existsSync(resultsPath)) {
      runnerFailure = `run-matrix.mjs exited ${run.code}: ${redact(run.stderr).slice(-3000)}`;
      return;
    }
    results = JSON.parse(readFileSync(resultsPath, 'utf8')) as Results;
    auditText = existsSync(results.keyswap.auditPath) ? readFileSync(results.keyswap.auditPath, 'utf8') : '';
  }, RUN_BOUND_MS + 10_000);

  afterAll(() => {
    const rows = CLIENTS.map((c) => {
      const run = results?.clients.find((r) => r.name === c.name);
      const stream = c.stream && run?.report?.chunks !== undefined ? `${run.report.chunks} chunks, first at ${run.report.ttfc_ms ?? '?'} ms` : '';
      return [c.name, run?.seconds === undefined ? '' : run.seconds.toFixed(2), stream, outcomes.get(c.name) ?? 'not run'];
    });
    const width = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length), 7));
    const line = (r: string[]) => `${(r[0] ?? '').padEnd(width[0] ?? 0)}  ${(r[1] ?? '').padStart(width[1] ?? 0)}  ${(r[2] ?? '').padEnd(width[2] ?? 0)}  ${r[3] ?? ''}`;
    const goLine = results?.go ? `go build: ${results.go.seconds.toFixed(2)} s${results.go.error ? ' (failed)' : ''}\n` : '';
    const phaseLine = results?.phases ? `runner phases (s since its start): ${Object.entries(results.phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}\n` : '';
    console.log(`client matrix (${((Date.now() - started) / 1000).toFixed(1)} s in all)\n${phaseLine}${goLine}${[line(['client', 'seconds', 'stream', 'result']), ...rows.map(line)].join('\n')}`);
    // KEYSWAP_MATRIX_KEEP=1 keeps the config, audit log and per-client results for a look after a failure.
    if (dir !== '' && process.env.KEYSWAP_MATRIX_KEEP === '1') console.log(`client matrix files kept in ${dir}`);
    else world?.remove();
  });

  it('the runner started the stand-ins and keyswap inside the namespace', () => {
    expect(runnerFailure).toBe('');
    expect(results?.keyswap.listening, redact(results?.keyswap.stderr ?? '')).toBe(true);
  });

  for (const spec of CLIENTS) {
    it(spec.name, (ctx) => {
      const run = results?.clients.find((r) => r.name === spec.name);
      if (run?.skipped) {
        console.log(`skipped ${spec.name}: ${run.skipped}`);
        outcomes.set(spec.name, `skipped: ${run.skipped}`);
        ctx.skip();
        return;
      }
      outcomes.set(spec.name, 'FAIL');
      try {
        judge(spec, run);
        outcomes.set(spec.name, 'pass');
      } catch (err) {
        outcomes.set(spec.name, `FAIL: ${firstLine(run, err)}`);
        throw err;
      }
    });
  }

  it('keyswap’s own log and audit file hold no real key, and the audit log has an allowed injection for each secret a stand-in received', () => {
    expect(results).not.toBeNull();
    expect(leaksIn(results?.keyswap.stdout ?? ''), 'keyswap stdout').toBe(false);
    expect(leaksIn(results?.keyswap.stderr ?? ''), 'keyswap stderr').toBe(false);
    expect(leaksIn(auditText), 'audit file').toBe(false);
    const injected = auditText.split('\n').filter((l) => l.includes('"type":"inject_decision"') && l.includes('"decision":"allowed"'));
    const servedApis = new Set((results?.clients ?? []).flatMap((c) => c.requests ?? []).filter((q) => q.key === 'real').map((q) => q.api as ClientSpec['api']));
    for (const api of servedApis) expect(injected.some((l) => l.includes(`"secret_name":"${SECRET_OF_API[api]}"`)), `an allowed inject_decision for ${SECRET_OF_API[api]}`).toBe(true);
  });
});

/** Every check on one client; the first that fails names the problem in the summary table. */
function judge(spec: ClientSpec, run: ClientRun | undefined): void {
  expect(run, 'the runner has a result for this client').toBeDefined();
  if (run === undefined) return;
  expect(run.notRun, 'the client ran').toBeUndefined();
  const output = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
  const key = KEY_OF_API[spec.api];
  expect(leaksIn(output), 'the agent’s output holds a real key').toBe(false);
  expect(run.timedOut, 'timed out').toBe(false);
  expect(run.exitCode, `exit code; output:\n${redact(output).slice(-2000)}`).toBe(0);
  expect(run.report?.status, `reported status; output:\n${redact(output).slice(-2000)}`).toBe(200);
  const requests = run.requests ?? [];
  // Only keyswap holds the real key, so a 200 answered to it proves the request went through keyswap.
  expect(requests.some((q) => q.key === 'real' && q.status === 200), `the stand-in answered the real key; it saw ${JSON.stringify(requests.map(({ method, path: p, via, key: k, status }) => ({ method, path: p, via, key: k, status })))}`).toBe(true);
  expect(requests.filter((q) => q.key !== 'none' && q.key !== 'real'), 'requests that reached the stand-in with a key other than the real one').toEqual([]);
  if (spec.api === 'git') {
    if (run.report?.readme !== undefined) expect(run.report.readme).toBe(README);
    if (run.report?.config_holds_placeholder !== undefined) expect(run.report.config_holds_placeholder, 'the clone’s .git/config keeps the placeholder').toBe(true);
    return;
  }
  expect(run.report?.echo, 'the echoed key, as the agent sees it after scrubbing').toBe(key.placeholder);
  if (spec.stream) {
    expect(run.report?.chunks ?? 0, 'streamed pieces').toBeGreaterThan(1);
    const streamed = requests.find((q) => q.lastChunkWrittenAt !== null);
    const first = run.report?.first_chunk_at ?? Number.POSITIVE_INFINITY;
    expect(first < (streamed?.lastChunkWrittenAt ?? 0), 'the first piece reached the client before the stand-in wrote the last (not buffered)').toBe(true);
  }
}

function firstLine(run: ClientRun | undefined, err: unknown): string {
  const message = (redact(err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '').replace(/; output:$/, '');
  const status = run?.report?.status === undefined ? '' : ` (status ${run.report.status})`;
  // The line that says why: an error's own line before any that merely mentions an error (a stack frame, a path).
  const lines = redact(run?.stderr ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('keyswap: removed'));
  const why = lines.find((l) => /^[A-Z]\w*(Error|Exception)\b/.test(l)) ?? lines.find((l) => /error|fail|refused|denied|EAI_|certificate|unable/i.test(l) && !/file:\/\/|node_modules\//.test(l)) ?? '';
  return `${message.slice(0, 60)}${status}${why ? ` | ${why.slice(0, 200)}` : ''}`;
}
