import { defineConfig } from 'vitest/config';

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
