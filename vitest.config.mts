import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/cleanup.ts'],
    // one provider plugin cache for every terraform init of the run (test/global-setup.ts)
    globalSetup: ['test/global-setup.ts'],
    // guards against a hang, not assertions on speed: a test that runs real tools while other files (and, on a
    // shared machine, other work) run beside it can take minutes
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // Most of the suite's time is spent waiting for child processes (terraform and its providers, npm, tsc, the
    // synthesis of test projects), not in the test workers: on a two-core machine vitest's default (one worker
    // less than the cores: one) leaves a core idle while a file waits. More workers overlap the waiting.
    maxWorkers: 4,
    // the suite is a pipeline: it chooses unattended roots explicitly (meshform refuses to create one silently
    // without a terminal); the tests of that refusal unset it
    // GOGC: Terraform and its providers are Go programs; the AWS provider builds its whole schema at every start
    // (validate, plan, show, apply each start it), and a less eager garbage collector (GOGC=200, as meshform's own default for its Terraform runs) spends about a fifth less
    // CPU on that, for some more memory. It changes no result.
    env: { MESHFORM_UNATTENDED_ROOT: '1', GOGC: '200' },
  },
});
