import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/cleanup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // the suite is a pipeline: it chooses unattended roots explicitly (meshform refuses to create one silently
    // without a terminal); the tests of that refusal unset it
    env: { MESHFORM_UNATTENDED_ROOT: '1' },
  },
});
