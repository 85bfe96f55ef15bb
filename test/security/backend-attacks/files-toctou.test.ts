import { spawn } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FilesBackend } from '../../../src/secrets/index.js';
import { tempWorld } from '../../helpers/temp-world.js';

/*
 * attack26: the files backend checks realpath(dir/NAME) is inside the directory, then opens that resolved path with
 * O_NOFOLLOW, which guards only the last component. Whoever can write anywhere under the directory (nothing checks
 * its owner or mode) swaps an intermediate directory for a link between the two calls, and keyswap reads a file
 * outside the directory — its own Vault token, store key, audit key — as the secret's value, and injects it
 * where that secret is bound. Here a real process does the swapping, as an agent would.
 */
describe('attack26: files backend check-then-open race', () => {
  it('never returns the content of a file outside the directory', async () => {
    const w = tempWorld('a26-files');
    const dir = path.join(w.dir, 'secrets');        // the configured directory, writable by the attacker
    const outside = path.join(w.dir, 'keyswap-private'); // e.g. /var/lib/keyswap, /etc/keyswap
    mkdirSync(dir);
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'vault-token'), 'hvs.KEYSWAP-OWN-VAULT-TOKEN', { mode: 0o600 });
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'vault-token'), 'decoy-value', { mode: 0o400 });
    symlinkSync('sub/vault-token', path.join(dir, 'GITHUB_TOKEN'));

    // The attacker: flips dir/sub between a real directory and a link to the outside directory, forever.
    const flipper = spawn('sh', ['-c', `cd ${dir} && while :; do mv sub sub.d && ln -s ${outside} sub && rm sub && mv sub.d sub; done`], { stdio: 'ignore' });
    const backend = await FilesBackend.open(dir);
    const seen = new Map<string, number>();
    try {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && !seen.has('hvs.KEYSWAP-OWN-VAULT-TOKEN')) {
        try {
          const v = (await backend.fetch('GITHUB_TOKEN', { signal: AbortSignal.timeout(1000) })).reveal();
          seen.set(v, (seen.get(v) ?? 0) + 1);
        } catch (err) {
          const k = `error: ${(err as Error).constructor.name}`;
          seen.set(k, (seen.get(k) ?? 0) + 1);
        }
      }
    } finally {
      flipper.kill('SIGKILL');
    }
    expect(Object.fromEntries(seen)).not.toHaveProperty(['hvs.KEYSWAP-OWN-VAULT-TOKEN']);
  });
});
