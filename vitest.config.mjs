import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60000,
    hookTimeout: 60000,
    // Cross-process tests fork real workers; two cores: keep file parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
    env: { RINGMASTER_TEST_HOOKS: '1' },
  },
});
