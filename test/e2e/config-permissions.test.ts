import type { SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { cli } from '../helpers/cli.js';
import { curlVia } from '../helpers/clients.js';
import { startHarness, waitFor } from '../helpers/harness.js';
import { tempWorld } from '../helpers/temp-world.js';

const CONFIG = `version: 1
listen: 127.0.0.1:0
state_dir: ./state
audit: { path: ./audit.jsonl }
backend: { type: env }
secrets:
  K:
    placeholder: "sk-PLACEHOLDER-MODE-0123456789abcdef"
    inject: { header: Authorization, format: "Bearer {K}" }
    bindings: [ { host: api.example.test, methods: [GET], paths: ["/v1/**"] } ]
`;

function configWithMode(mode: number): { dir: string; file: string } {
  const w = tempWorld('perm');
  const file = w.write('keyswap.yaml', CONFIG);
  chmodSync(file, mode);
  return { dir: w.dir, file };
}

const keyswap = (dir: string, args: readonly string[]): SpawnSyncReturns<string> => cli(args, { cwd: dir, timeoutMs: 20_000 });

// Every command that reads the config: a marker file shows whether `run`'s command ran.
const COMMANDS: readonly [string, (file: string) => string[]][] = [
  ['serve', (f) => ['serve', '--config', f]],
  ['run', (f) => ['run', '--config', f, '--', 'touch', 'ran']],
  ['check', (f) => ['check', '--config', f]],
  ['explain', (f) => ['explain', '--config', f, 'GET', 'https://api.example.test/v1/x']],
  ['reload', (f) => ['reload', '--config', f]],
  ['env', (f) => ['env', '--config', f]],
];

describe('a keyswap.yaml others can write is refused: whoever writes it decides where secrets go', () => {
  it.each(COMMANDS)('%s refuses a 0666 config with exit 2 and one line naming the file, its mode and the fix', (_name, args) => {
    const { dir, file } = configWithMode(0o666);
    const r = keyswap(dir, args(file));
    expect(r.stderr).toBe(
      `keyswap: refused: ${file}:1: (file): writable by group or others (mode 666): whoever can change it can add bindings, upstream.resolve entries or an extra_ca_file; fix: chmod go-w ${file}\n`,
    );
    expect(r.status).toBe(2);
    expect(r.stdout).not.toContain('listening');
    expect(existsSync(path.join(dir, 'ran'))).toBe(false);
    expect(existsSync(path.join(dir, 'state'))).toBe(false); // refused before anything was created
  });

  it('the same config at 0644 loads: check is clean and run runs its command behind keyswap', () => {
    const { dir, file } = configWithMode(0o644);
    expect(keyswap(dir, ['check', '--config', file]).status).toBe(0);
    const r = keyswap(dir, ['run', '--config', file, '--', 'touch', 'ran']);
    expect(r.stderr).toContain('keyswap: serving touch on http://127.0.0.1:');
    expect(r.status).toBe(0);
    expect(existsSync(path.join(dir, 'ran'))).toBe(true);
  });

  it('doctor flags it with the fix, exits 2, and checks nothing else (a config others wrote could aim the backend checks anywhere)', () => {
    const { dir, file } = configWithMode(0o666);
    const r = keyswap(dir, ['doctor', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain(`!! ${file}:1: (file): writable by group or others (mode 666): whoever can change it`);
    expect(r.stdout).toContain(`   fix: chmod go-w ${file}\n`);
    expect(r.stdout).not.toMatch(/backend|audit log/);
  });

  it('doctor flags an extra_ca_file others can write, with its line and fix', () => {
    const { dir, file } = configWithMode(0o644);
    writeFileSync(file, CONFIG.replace('backend: { type: env }', 'backend: { type: env }\nupstream: { extra_ca_file: ./extra-ca.pem }'));
    const ca = path.join(dir, 'extra-ca.pem');
    writeFileSync(ca, '');
    chmodSync(ca, 0o664);
    const r = keyswap(dir, ['doctor', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain(`!! ${file}:6: upstream.extra_ca_file: ${ca} is writable by group or others (mode 664)`);
    expect(r.stdout).toContain(`   fix: chmod go-w ${ca}\n`);
  });

  it('a running keyswap refuses to reload a config made writable by others, keeps serving, and audits why', async () => {
    const h = await startHarness();
    onTestFinished(() => h.close());
    const file = path.join(h.dir, 'keyswap.yaml');
    chmodSync(file, 0o666);
    h.child.kill('SIGHUP');
    expect(await waitFor(() => h.auditRecords().some((r) => r.type === 'config_reload'))).toBe(true);
    const event = h.auditRecords().find((r) => r.type === 'config_reload');
    expect(event?.ok).toBe(false);
    expect(String((event?.errors as string[])[0])).toContain(`fix: chmod go-w ${file}`);
    expect((await curlVia(h, 'http://keyswap.invalid/healthz')).status).toBe(200);
  });
});
