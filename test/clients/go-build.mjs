// Builds the Go client inside the namespace: standard library only, so no module proxy and no toolchain download
// is ever needed; the build cache outlives the run so a second run is quick.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** @returns {{ binary: string, seconds: number } | { error: string, seconds: number }} */
export function buildGoClient(sourceDir, outDir) {
  const cache = path.join(tmpdir(), 'keyswap-matrix-go');
  mkdirSync(cache, { recursive: true });
  const binary = path.join(outDir, 'go-client');
  const started = Date.now();
  const r = spawnSync('go', ['build', '-o', binary, 'main.go'], {
    cwd: sourceDir,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: cache,
      GOCACHE: path.join(cache, 'build'),
      GOPATH: path.join(cache, 'gopath'),
      GOTOOLCHAIN: 'local',
      GOPROXY: 'off',
      GOFLAGS: '-mod=mod',
    },
  });
  const seconds = (Date.now() - started) / 1000;
  return r.status === 0 ? { binary, seconds } : { error: `go build failed: ${r.error?.message ?? ''}${r.stderr}`, seconds };
}
