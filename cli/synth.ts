import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeHolder, FileLock } from '../constructs/private/file-lock';
import { MESH_MANIFEST_DIR, MeshManifest } from '../constructs/private/mesh-manifest';
import { MESHFORM_OUTDIR_ENV } from '../constructs/private/synth-environment';
import { childEnvironment } from './environment';
import { fileSystemError, fileSystemFailureIn } from './fs-errors';
import { CliError, MESHFORM } from './output';

/** meshform's per-project working directory (plugin cache, plan runs, deploy journal); git-ignored. */
export function cacheDirectory(projectDir: string): string {
  const dir = path.join(projectDir, '.meshform-cache');
  // saved plans and offline state copies hold secret values: private to the user
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const ignore = path.join(dir, '.gitignore');
  if (!fs.existsSync(ignore)) fs.writeFileSync(ignore, '# meshform working files: never commit\n*\n');
  return dir;
}

/** The project's lock file: one plan, deploy, synth or check at a time. */
export const PROJECT_LOCK = path.join('.meshform-cache', 'meshform.lock');

/**
 * Runs `fn` holding the project's lock (re-entrant within a process); refuses at once, naming the holder,
 * while another run holds it. A lock left by a run that is gone is taken over.
 */
export function withProjectLock<T>(projectDir: string, command: string, fn: () => T): T {
  const lock = projectLock(projectDir, command);
  try {
    return fn();
  } finally {
    lock.release();
  }
}

/** `withProjectLock` for an asynchronous run (plan, deploy). */
export async function withProjectLockAsync<T>(projectDir: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = projectLock(projectDir, command);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** Takes the project's lock for `meshform <command>`, or refuses naming the holder. */
function projectLock(projectDir: string, command: string): FileLock {
  readCdktfConfig(projectDir); // not a project: say so, and write nothing there
  cacheDirectory(projectDir);
  const lock = new FileLock(path.join(projectDir, PROJECT_LOCK), `meshform ${command} in ${projectDir}`);
  const holder = lock.tryAcquire();
  if (holder) {
    throw new CliError(
      `another meshform run is using this project: ${describeHolder(holder)}. ` +
        `Wait for it to finish; if that process is gone or is not meshform, remove ${path.join(projectDir, PROJECT_LOCK)}`,
    );
  }
  return lock;
}

/** The parts of cdktf.json meshform reads. */
export interface CdktfConfig {
  readonly app: string;
  readonly output: string;
}

/** Reads cdktf.json in `projectDir`. */
export function readCdktfConfig(projectDir: string): CdktfConfig {
  const file = path.join(projectDir, 'cdktf.json');
  let raw: { app?: unknown; output?: unknown };
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { app?: unknown; output?: unknown };
  } catch {
    throw new CliError(
      `no readable cdktf.json in ${projectDir}: run ${MESHFORM} from the project root (or pass --project <dir>)`,
    );
  }
  if (typeof raw.app !== 'string' || raw.app.trim() === '') {
    throw new CliError(`${file} has no "app" command`);
  }
  return { app: raw.app, output: typeof raw.output === 'string' ? raw.output : 'cdktf.out' };
}

/** The result of a synthesis. */
export interface SynthResult {
  /** Absolute path of the output directory. */
  readonly outdir: string;
  /** The mesh manifests the app wrote, by mesh name. */
  readonly meshes: MeshManifest[];
  /** Warnings cdktf recorded in its manifest, by stack. */
  readonly annotations: { readonly stack: string; readonly level: string; readonly message: string }[];
  /** What each stack depends on (cdktf's manifest), by stack name. */
  readonly dependencies: { readonly [stack: string]: readonly string[] };
}

/**
 * Runs the app command of cdktf.json into a staging directory and, only when it succeeds, replaces the
 * output directory with it (keeping each surviving stack's `.terraform` directory and lock file), so a failed
 * synthesis leaves the previous output untouched and nothing half-written. The app gets the staging directory
 * as `CDKTF_OUTDIR`; an app that names its own `outdir` (which must be cdktf.json's "output", as for cdktf's
 * CLI) is pointed at it by its mesh (`MESHFORM_OUTDIR` tells it the directory it stands in for).
 */
export function synthesize(
  projectDir: string,
  config: CdktfConfig,
  check?: (previous: SynthResult | undefined, next: SynthResult) => void,
): SynthResult {
  const outdir = path.resolve(projectDir, config.output);
  return withProjectLock(projectDir, 'synth', () => {
    repairOutput(outdir);
    return synthesizeLocked(projectDir, config, outdir, check);
  });
}

/**
 * Finishes or undoes what an interrupted synthesis left beside the output directory (under the project lock,
 * nothing else writes there): a complete staged output whose predecessor was moved aside is moved in, else
 * the previous output is put back; leftovers are removed.
 */
function repairOutput(outdir: string): void {
  const dir = path.dirname(outdir);
  const base = path.basename(outdir);
  if (!fs.existsSync(dir)) return;
  const names = fs.readdirSync(dir);
  const staging = names.filter((n) => n.startsWith(`${base}.staging-`)).map((n) => path.join(dir, n));
  const old = names.filter((n) => n.startsWith(`${base}.old-`)).map((n) => path.join(dir, n));
  if (!fs.existsSync(outdir) && old.length > 0) {
    // the output was moved aside only once a staged output was complete: that one is the newer synthesis
    const next = staging.find((s) => fs.existsSync(path.join(s, 'manifest.json'))) ?? old[0]!;
    moveOrExplain(next, outdir, 'an interrupted synthesis left it beside the output; nothing else was changed');
  }
  for (const leftover of [...staging, ...old]) removeLeftover(leftover);
}

/** Renames `from` to `to`, or fails with a one-line error naming the path and the fix. */
function moveOrExplain(from: string, to: string, context: string): void {
  try {
    fs.renameSync(from, to);
  } catch (e) {
    throw fileSystemError(e, context) ?? e;
  }
}

/** Removes what an earlier synthesis left; when that is not possible, says so and goes on (it is not the output). */
function removeLeftover(leftover: string): void {
  try {
    fs.rmSync(leftover, { recursive: true, force: true });
  } catch (e) {
    const error = fileSystemError(e);
    if (!error) throw e;
    process.stderr.write(`meshform: warning: a previous synthesis is left at ${leftover}: ${error.message}\n`);
  }
}

/** True when `dir` is a mount point (its device differs from its parent's): it cannot be renamed. */
function isMountPoint(dir: string): boolean {
  try {
    return fs.statSync(dir).dev !== fs.statSync(path.dirname(dir)).dev;
  } catch {
    return false;
  }
}

function synthesizeLocked(
  projectDir: string,
  config: CdktfConfig,
  outdir: string,
  check?: (previous: SynthResult | undefined, next: SynthResult) => void,
): SynthResult {
  if (isMountPoint(outdir)) {
    // the swap below renames the output directory, which a mount point refuses (EBUSY): say so before synthesizing
    throw new CliError(
      `cannot replace ${outdir}: it is a mount point, and meshform replaces its output by renaming a complete new directory into place; nothing was written. ` +
        `Fix: set "output" in cdktf.json to a directory inside the mount (e.g. "${path.join(config.output, 'app')}"), or mount its parent instead`,
    );
  }
  const staging = `${outdir}.staging-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  const run = spawnSync(config.app, {
    cwd: projectDir,
    shell: true,
    encoding: 'utf8',
    env: childEnvironment({ CDKTF_OUTDIR: staging, [MESHFORM_OUTDIR_ENV]: config.output, CHECKPOINT_DISABLE: '1' }),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) {
    removeLeftover(staging);
    const output = `${run.stderr ?? ''}${run.stdout ?? ''}`
      .split('\n')
      .filter((l) => !/npm warn Unknown user config/.test(l))
      .join('\n')
      .trim();
    const fileSystem = !/MeshformError: /.test(output) && fileSystemFailureIn(output, staging);
    if (fileSystem)
      throw new CliError(
        `synthesis failed (${config.app}): the app ${fileSystem.replace(/^cannot/, 'could not')}; nothing was written (${outdir} is as it was)`,
      );
    throw new CliError(`synthesis failed (${config.app}); nothing was written:\n${extractError(output)}`);
  }
  if (!fs.existsSync(path.join(staging, 'manifest.json'))) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw new CliError(`the app (${config.app}) did not call app.synth(): no manifest.json was produced`);
  }
  if (check) {
    const previous = fs.existsSync(path.join(outdir, 'manifest.json')) ? readSynthOutput(outdir) : undefined;
    try {
      check(previous, readSynthOutput(staging));
    } catch (e) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw e;
    }
  }
  swapOutput(outdir, staging);
  return readSynthOutput(outdir);
}

/**
 * Replaces the output directory with the staged one: each surviving stack's Terraform working state moves
 * over, the output moves aside, the staged one moves in. When a step fails (a read-only, full or mounted
 * directory), what was done is undone, the staged output removed, and the error names the path and the fix.
 */
function swapOutput(outdir: string, staging: string): void {
  const old = `${outdir}.old-${process.pid}`;
  const moved: [string, string][] = [];
  const undo = () => {
    if (!fs.existsSync(outdir) && fs.existsSync(old)) fs.renameSync(old, outdir);
    for (const [from, to] of moved.reverse()) if (fs.existsSync(to) && !fs.existsSync(from)) fs.renameSync(to, from);
  };
  try {
    for (const [from, to] of terraformWorkingState(outdir, staging)) {
      fs.renameSync(from, to);
      moved.push([from, to]);
    }
    if (fs.existsSync(outdir)) fs.renameSync(outdir, old);
    fs.renameSync(staging, outdir);
  } catch (e) {
    const error = fileSystemError(e, `nothing was written (${outdir} is as it was)`);
    try {
      undo();
    } catch (second) {
      throw (
        fileSystemError(
          second,
          `and the previous output could not be put back: it is at ${fs.existsSync(old) ? old : outdir}, the new one at ${staging}`,
        ) ?? second
      );
    }
    removeLeftover(staging);
    throw error ?? e;
  }
  removeLeftover(old);
}

/** A JSON file of the synthesized output; refused naming the file when it is unreadable or not JSON. */
export function readOutputJson<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw (
      fileSystemError(e) ??
      new CliError(`cannot read ${file} (${(e as Error).message}). Fix: run ${MESHFORM} synth again`)
    );
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CliError(
      `${file} is not valid JSON (${(e as Error).message}): the synthesized output is damaged. Fix: run ${MESHFORM} synth again to rewrite it`,
    );
  }
}

/** Reads what a synthesis left in `outdir`. */
export function readSynthOutput(outdir: string): SynthResult {
  const manifestFile = path.join(outdir, 'manifest.json');
  if (!fs.existsSync(manifestFile))
    throw new CliError(`${outdir} holds no synthesized app: run ${MESHFORM} synth first`);
  const manifest = readOutputJson<{
    stacks: { [name: string]: { annotations: { level: string; message: string }[]; dependencies: string[] } };
  }>(manifestFile);
  if (typeof manifest.stacks !== 'object' || manifest.stacks === null)
    throw new CliError(`${manifestFile} is not a cdktf manifest (no "stacks"). Fix: run ${MESHFORM} synth again`);
  const annotations = Object.entries(manifest.stacks).flatMap(([stack, s]) =>
    s.annotations.map((a) => ({ stack, level: a.level, message: a.message })),
  );
  const dir = path.join(outdir, MESH_MANIFEST_DIR);
  const meshes = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => readOutputJson<MeshManifest>(path.join(dir, f)))
    : [];
  const dependencies = Object.fromEntries(Object.entries(manifest.stacks).map(([n, st]) => [n, st.dependencies]));
  return { outdir, meshes, annotations, dependencies };
}

/** What moves from the output to the staged one: each surviving stack's `.terraform` and lock file. */
function terraformWorkingState(outdir: string, staging: string): [string, string][] {
  const oldStacks = path.join(outdir, 'stacks');
  if (!fs.existsSync(oldStacks)) return [];
  const moves: [string, string][] = [];
  for (const stack of fs.readdirSync(oldStacks)) {
    const target = path.join(staging, 'stacks', stack);
    if (!fs.existsSync(target)) continue;
    for (const keep of ['.terraform', '.terraform.lock.hcl']) {
      const from = path.join(oldStacks, stack, keep);
      if (fs.existsSync(from)) moves.push([from, path.join(target, keep)]);
    }
  }
  return moves;
}

/** The meshform error of a failed app run, else its whole output. */
function extractError(output: string): string {
  const match = output.match(/MeshformError: (.*)/);
  if (match) return match[1]!;
  return output;
}
