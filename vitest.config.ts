import { defineConfig } from 'vitest/config';

// keyswap refuses a config that group or others can write, and the tests write theirs with the default mode: run
// them under the usual 022 whatever the shell's umask (002 on systems with a private group per user). Workers
// are forked after this and inherit it; tests about other umasks set them on the keyswap they spawn.
process.umask(0o022);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Each e2e file starts its own keyswap and upstreams; on 2 cores more than two at once only adds contention.
    maxWorkers: 2,
  },
});
