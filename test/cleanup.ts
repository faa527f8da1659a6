import { afterAll } from 'vitest';
import { removeTempDirs } from './temp-dirs';

// every test file leaves /tmp as it found it (set MESHFORM_KEEP_TEST_DIRS=1 to look at what a test wrote)
afterAll(() => {
  if (!process.env.MESHFORM_KEEP_TEST_DIRS) removeTempDirs();
});
