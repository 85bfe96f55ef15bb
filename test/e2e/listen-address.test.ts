import type { SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempWorld } from '../helpers/temp-world.js';

function configListening(listen: string): { dir: string; file: string } {
  const w = tempWorld('listen');
  const file = w.write('keyswap.yaml', `version: 1\nlisten: ${listen}\nstate_dir: ./state\naudit: { path: ./audit.jsonl }\nbackend: { type: env }\nsecrets: {}\n`);
  return { dir: w.dir, file };
}

const keyswap = (dir: string, args: readonly string[]): SpawnSyncReturns<string> => cli(args, { cwd: dir, timeoutMs: 20_000 });

// Every entry point that starts a proxy; `run`'s command would create a marker file.
const LISTENERS: readonly [string, (file: string) => string[]][] = [
  ['serve', (f) => ['serve', '--config', f]],
  ['run', (f) => ['run', '--config', f, '--', 'touch', 'ran']],
  ['quickstart', () => ['quickstart']],
];

describe('one listen-address rule for every entry point that listens', () => {
  it.each(LISTENERS)('%s refuses listen: 0.0.0.0 with exit 2 and the same words', (_name, args) => {
    const { dir, file } = configListening('0.0.0.0:0');
    const r = keyswap(dir, args(file));
    expect(r.stderr).toBe(
      `keyswap: ${file}: listen: 0.0.0.0 is not a loopback address; any host that can reach it could send requests through keyswap with your secrets. ` +
        'Use 127.0.0.1, or pass --allow-non-loopback if another layer (a container network, a firewall) restricts who connects.\n',
    );
    expect(r.status).toBe(2);
    expect(r.stdout).not.toContain('listening');
    expect(existsSync(path.join(dir, 'ran'))).toBe(false);
  });

  it('run --allow-non-loopback, like serve, listens where the config says and hands the child that URL', () => {
    const { dir, file } = configListening('0.0.0.0:0');
    const r = keyswap(dir, ['run', '--config', file, '--allow-non-loopback', '--', 'sh', '-c', 'echo "$HTTPS_PROXY" > proxy-url']);
    expect(r.status).toBe(0);
    expect(readFileSync(path.join(dir, 'proxy-url'), 'utf8')).toMatch(/^http:\/\/0\.0\.0\.0:\d+\n$/);
  });
});
