/**
 * The type check of `npm test` (TypeScript strict, tsconfig.json: the library, the CLI, the examples, the
 * scripts and this suite), run as one test file so that it runs beside the other files instead of before them.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Root of the repository (not from ./support: this file needs neither the library nor the CLI). */
const REPO = path.resolve(__dirname, '..');

describe('the project', () => {
  it('type-checks: tsc --noEmit -p . reports no error', async () => {
    // WHEN the TypeScript compiler the repository pins checks the whole project
    const tsc = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', REPO],
        {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });
    // THEN it prints nothing and exits 0 (its errors, if any, are the failure message)
    expect(tsc.output.replace(new RegExp(`${REPO}${path.sep}`, 'g'), '')).toBe('');
    expect(tsc.code).toBe(0);
  }, 600_000);
});
