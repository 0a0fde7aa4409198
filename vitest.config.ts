import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (in-memory ports, codecs, simulator) run in parallel;
// integration tests build real network namespaces and run one file at a time so that
// two files never compete for the 2 cores or for names.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{router,crypto,gossip,balancer,dns,agent,cli,native,bench}/**/*.test.ts', 'test/soak/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
