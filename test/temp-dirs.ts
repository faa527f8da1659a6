import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// Kept apart from test/support.ts: test/cleanup.ts (the setup file of every test file) imports this, and must not
// load the CLI and the whole library into files that never use them.

const created: string[] = [];

/** A fresh temporary directory, removed after the test file that made it (test/cleanup.ts). */
export function tempDir(prefix = 'meshform-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Removes every directory tempDir made in this test file. */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
