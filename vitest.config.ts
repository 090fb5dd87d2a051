import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests create real users, processes and servers; keep parallelism modest on a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    // CI reads the machine-readable results to print one plain `N passed, N failed` closing line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.test-results.json' }]] : ['default'],
  },
});
