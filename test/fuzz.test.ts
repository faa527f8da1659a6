import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { App } from '../constructs/private/engine';
import { CaMaterialError, MeshformError } from '../index';
import { tempDir, readTree } from './support';
import { anyPlan, buildPlan, Plan } from './topology-fuzz';

/**
 * Every topology ends as valid output or as a meshform error naming a construct path and a fix: never an
 * internal error (TypeError, RangeError, a raw constructs error), never a half-written output, never
 * `null`, `NaN`, `undefined` or `Infinity` in a synthesized file. Seeded and bounded; raise the number of
 * topologies outside the suite with MESHFORM_FUZZ_RUNS (and MESHFORM_FUZZ_SEED for another sequence).
 */
const RUNS = Number(process.env.MESHFORM_FUZZ_RUNS ?? 25);
const SEED = Number(process.env.MESHFORM_FUZZ_SEED ?? 13);
/** Words a synthesized file never holds (JSON keys such as "nullable" and shell's /dev/null do not match). */
const LEAKED = /(?<![/\w])null\b|\b(NaN|undefined|Infinity)\b/;

type Outcome =
  | { kind: 'synthesized' }
  | { kind: 'accepted-misuse'; misuse: string }
  | { kind: 'refused'; code: string }
  | { kind: 'internal'; error: unknown };

function attempt(plan: Plan): Outcome & { outdir: string } {
  const outdir = path.join(tempDir('meshform-fuzz-'), 'cdktf.out');
  const app = new App({ outdir, stackTraces: false });
  try {
    const misused = buildPlan(app, plan);
    app.synth();
    // every misuse of the API is invalid: synthesizing it is accepting an invalid topology
    if (misused) return { kind: 'accepted-misuse', misuse: plan.misuse!, outdir };
    return { kind: 'synthesized', outdir };
  } catch (e) {
    if (e instanceof MeshformError && e.constructPath !== '' && e.fix !== '')
      return { kind: 'refused', code: e.code, outdir };
    if (e instanceof CaMaterialError && e.subject !== '' && e.fix !== '')
      return { kind: 'refused', code: e.code, outdir };
    return { kind: 'internal', error: e, outdir };
  }
}

describe('random and single-fault topologies (fuzz, fast-check)', () => {
  it(
    `end as valid output or a meshform error with a path and a fix (${RUNS} topologies, seed ${SEED})`,
    () => {
      const counts = { tried: 0, synthesized: 0, refused: 0, internal: 0, acceptedMisuses: 0 };
      const codes = new Map<string, number>();
      try {
        fc.assert(
          fc.property(anyPlan, (plan) => {
            counts.tried++;
            const outcome = attempt(plan);
            try {
              if (outcome.kind === 'internal') {
                counts.internal++;
                const error = outcome.error as Error;
                throw new Error(`internal error ${error?.name}: ${error?.message}\n${error?.stack ?? ''}`);
              }
              if (outcome.kind === 'accepted-misuse') {
                counts.acceptedMisuses++;
                throw new Error(`invalid topology accepted: misuse "${outcome.misuse}" synthesized`);
              }
              if (outcome.kind === 'refused') {
                counts.refused++;
                codes.set(outcome.code, (codes.get(outcome.code) ?? 0) + 1);
                // nothing half-written: no stack, no manifest, no mesh manifest
                const stacks = path.join(outcome.outdir, 'stacks');
                expect(fs.existsSync(stacks) ? fs.readdirSync(stacks) : []).toEqual([]);
                expect(fs.existsSync(path.join(outcome.outdir, 'manifest.json'))).toBe(false);
                expect(fs.existsSync(path.join(outcome.outdir, 'meshform'))).toBe(false);
                return;
              }
              counts.synthesized++;
              for (const [file, content] of readTree(outcome.outdir)) {
                const leaked = LEAKED.exec(content);
                if (leaked)
                  throw new Error(
                    `${file} holds ${leaked[0]}: …${content.slice(Math.max(0, leaked.index - 120), leaked.index + 40)}…`,
                  );
              }
            } finally {
              fs.rmSync(path.dirname(outcome.outdir), { recursive: true, force: true });
            }
          }),
          { numRuns: RUNS, seed: SEED, endOnFailure: true },
        );
      } finally {
        // the counts, also when a topology failed the test
        const summary = `fuzz: ${counts.tried} topologies tried, ${counts.refused} refused with a clear error, ${counts.synthesized} synthesized, ${counts.internal} internal errors, ${counts.acceptedMisuses} misuses accepted`;
        console.log(
          `${summary}\n  refusals by code: ${[...codes]
            .sort((a, b) => b[1] - a[1])
            .map(([c, n]) => `${c} ${n}`)
            .join(', ')}`,
        );
        if (process.env.MESHFORM_FUZZ_REPORT)
          fs.writeFileSync(
            process.env.MESHFORM_FUZZ_REPORT,
            `${JSON.stringify({ ...counts, codes: Object.fromEntries(codes) })}\n`,
          );
      }
      expect(counts.internal).toBe(0);
      expect(counts.acceptedMisuses).toBe(0);
      // the generator reaches both ends: some topologies synthesize, some are refused
      expect(counts.synthesized).toBeGreaterThan(0);
      expect(counts.refused).toBeGreaterThan(0);
      // a larger MESHFORM_FUZZ_RUNS takes longer: the limit grows with it (a hang still fails)
    },
    Math.max(120_000, RUNS * 5_000),
  );
});
