/**
 * `meshform deploy`: plan, ask for approval (gates must be acknowledged), then apply exactly the plans of
 * that run, each checked against the hash shown in the approval: first the destroy plans of stacks that left
 * the app (in reverse dependency order), then every other stack in dependency order. A failure or an
 * interruption stops there and the journal says where; a re-run plans again and continues with what is left.
 * A stack whose workspace runs in Terraform Cloud is planned there as a saved plan run, and that exact run is
 * what is applied (confirmed through the API and followed until it is applied), in the same order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, MESHFORM, style } from './output';
import {
  appliedConfigurationDir,
  dependencyOrder,
  fileSha256,
  keepAppliedConfiguration,
  PLAN_EXIT,
  PlanDocument,
  PlanOptions,
  planWithSynthesis,
  PlanWithSynthesis,
  StackPlan,
} from './plan';
import { renderPlanText } from './plan-render';
import { Interruption, RunGuard } from './signals';
import { cacheDirectory, withProjectLockAsync } from './synth';
import { StackWorkspace, TerraformEnvironment, terraformDiagnostics, terraformError } from './terraform';
import { isEmptyPlan } from './terraform-plan';
import { tokenVariable } from '../constructs/private/terraform-cloud-api';
import { terraformCloudToken } from './applied';
import { applyInTerraformCloud, terraformCloudBaseUrl } from './terraform-cloud-plan';

/** What a deploy did to a stack. */
type StackOutcome = 'applied' | 'destroyed' | 'unchanged' | 'pending' | 'failed' | 'interrupted';

/** What a deploy did, kept between runs so a re-run says where the last one stopped. */
export interface DeployJournal {
  /** The plan run it applied. */
  readonly run: string;
  readonly started: string;
  finished?: string;
  readonly stacks: { [stack: string]: StackOutcome };
  failed?: { readonly stack: string; readonly reason: string; readonly error?: string };
  /** Where an interruption (a signal, the launcher gone) stopped it. */
  interrupted?: {
    readonly signal: string;
    readonly reason: string;
    readonly at: string;
    readonly stack?: string;
    /** `approval`, `before terraform apply`, `terraform apply`. */
    readonly step: string;
    /** How Terraform ended, when it was running. */
    readonly terraform?: string;
  };
}

/** How a deploy ended: `applied`, `up-to-date` (nothing to apply), `refused` (an incomplete plan, a blocked gate, a stack that cannot be applied here), `cancelled` (not approved), `failed` (an apply failed), `interrupted`. */
export type DeployOutcome = 'applied' | 'up-to-date' | 'refused' | 'cancelled' | 'failed' | 'interrupted';

/** What `meshform deploy --json` prints: the plan, and what the deploy did with it. */
export interface DeployResult {
  readonly exitCode: number;
  readonly outcome: DeployOutcome;
  /** The plan the deploy showed (absent when planning itself failed). */
  readonly plan?: PlanDocument;
  /** What it did to each stack, and where it stopped (`.meshform-cache/deploy.json`). */
  readonly journal?: DeployJournal;
}

/** What a deploy records while it runs, for its result. */
interface DeployRecord {
  outcome?: DeployOutcome;
  plan?: PlanDocument;
  journal?: DeployJournal;
}

/** Options of a deploy. */
export interface DeployOptions
  extends Omit<PlanOptions, 'offline' | 'terraform' | 'guard' | 'detailedExitCode' | 'stacks'> {
  /** Apply without asking; refused when a gate fires that is not acknowledged. */
  readonly autoApprove: boolean;
  /** Asks the user to approve; resolves true to go on. `abort` is signalled when the run is interrupted. */
  readonly confirm: (question: string, abort: AbortSignal) => Promise<boolean>;
  /** Where progress and the plan are printed. */
  readonly write: (text: string) => void;
}

function journalFile(projectDir: string): string {
  return path.join(cacheDirectory(projectDir), 'deploy.json');
}

function readJournal(projectDir: string): DeployJournal | undefined {
  try {
    return JSON.parse(fs.readFileSync(journalFile(projectDir), 'utf8')) as DeployJournal;
  } catch {
    return undefined;
  }
}

function writeJournal(projectDir: string, journal: DeployJournal): void {
  const file = journalFile(projectDir);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(journal, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

/** Plans, asks, applies; returns the exit code. Holds the project's lock throughout. */
export async function deployProject(options: DeployOptions): Promise<number> {
  return (await deployWithResult(options)).exitCode;
}

/** Plans, asks, applies; returns the exit code, the plan and what was done. Holds the project's lock throughout. */
export async function deployWithResult(options: DeployOptions): Promise<DeployResult> {
  return withProjectLockAsync(options.projectDir, 'deploy', async () => {
    const guard = new RunGuard();
    const record: DeployRecord = {};
    try {
      const exitCode = await deployLocked(options, guard, record);
      return {
        exitCode,
        outcome: record.outcome ?? (exitCode === PLAN_EXIT.ok ? 'applied' : 'failed'),
        ...(record.plan ? { plan: record.plan } : {}),
        ...(record.journal ? { journal: record.journal } : {}),
      };
    } finally {
      guard.stop();
    }
  });
}

function resumeNote(previous: DeployJournal | undefined): string | undefined {
  const stop = previous?.interrupted
    ? `was interrupted (${previous.interrupted.reason}) at ${previous.interrupted.stack ? `${previous.interrupted.stack}, ` : ''}${previous.interrupted.step}`
    : previous?.failed
      ? `stopped at ${previous.failed.stack} (${previous.failed.reason})`
      : undefined;
  if (!previous || !stop) return undefined;
  const done = Object.entries(previous.stacks)
    .filter(([, s]) => s === 'applied' || s === 'destroyed')
    .map(([n, s]) => (s === 'destroyed' ? `${n} (destroyed)` : n));
  return `resuming: the last deploy ${stop}; done in that run: ${done.join(', ') || 'none'}\n`;
}

/** One line of the approval: what is done to a stack and the hash of the saved plan that does it. */
function approvalLine(stack: StackPlan): string {
  if (stack.status === 'waiting')
    return `  plan and apply  ${stack.stack}  (once its upstream is applied; asked again)`;
  const c = stack.summary!.counts;
  const what = stack.destroy ? 'destroy' : 'apply  ';
  const which = stack.remote
    ? `Terraform Cloud run ${stack.remote.run} (${stack.remote.url})`
    : `plan ${stack.planFile} sha256 ${stack.planSha256}`;
  return `  ${what}  ${stack.stack}  ${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to destroy — ${which}`;
}

async function deployLocked(options: DeployOptions, guard: RunGuard, record: DeployRecord): Promise<number> {
  const note = resumeNote(readJournal(options.projectDir));
  if (note) options.write(style.yellow(note));
  // stacks in Terraform Cloud are planned there as saved plan runs: what is approved here is applied there
  const planned = await planWithSynthesis({ ...options, offline: false, terraform: true, guard, remotePlans: 'saved' });
  const { plan } = planned;
  record.plan = plan;
  record.outcome = 'refused';
  options.write(renderPlanText(plan));
  if (plan.exitCode === PLAN_EXIT.error) {
    const failed = plan.stacks.filter((s) => s.status === 'failed').map((s) => `${s.stack} (${s.reason})`);
    const unknown = plan.meshes.filter((m) => m.comparedWith === 'unreadable').map((m) => `mesh ${m.mesh}`);
    options.write(
      style.red(
        `deploy refused: the plan is incomplete: ${[...failed.map((f) => `cannot plan ${f}`), ...unknown.map((m) => `what ${m} applied cannot be read`)].join('; ')}. ` +
          'Fix what keeps them from planning here (or state an assumption with --assume-unapplied); nothing was applied\n',
      ),
    );
    return PLAN_EXIT.error;
  }
  const blocked = plan.meshes.flatMap((m) => m.gates).filter((g) => g.status === 'fired' && !g.acknowledged);
  if (blocked.length > 0) {
    options.write(
      style.red(
        `deploy refused: ${blocked.length} gate${blocked.length === 1 ? '' : 's'} not acknowledged (${[...new Set(blocked.map((g) => g.acknowledgeWith))].join(', ')})\n`,
      ),
    );
    return PLAN_EXIT.gated;
  }
  const terraform = planned.terraform;
  if (!terraform) throw new CliError(`deploy needs terraform: ${plan.terraform.reason}`);
  const elsewhere = plan.stacks.filter((s) => (s.remote && s.remote.mode !== 'saved') || s.status === 'skipped');
  if (elsewhere.length > 0) {
    options.write(
      style.red(
        `deploy refused: cannot apply ${elsewhere.map((s) => `${s.stack} (${s.remote ? `a speculative plan in Terraform Cloud, run ${s.remote.url}` : s.reason})`).join('; ')} here\n`,
      ),
    );
    return PLAN_EXIT.error;
  }
  const pending = plan.stacks.filter(
    (s) => s.status === 'waiting' || (s.summary && (s.destroy || !isEmptyPlan(s.summary))),
  );
  const journal: DeployJournal = {
    run: plan.run,
    started: new Date().toISOString(),
    stacks: Object.fromEntries(plan.stacks.map((s) => [s.stack, pending.includes(s) ? 'pending' : 'unchanged'])),
  };
  record.journal = journal;
  if (pending.length === 0) {
    record.outcome = 'up-to-date';
    journal.finished = new Date().toISOString();
    writeJournal(options.projectDir, journal);
    keepUnchanged(options.projectDir, planned);
    options.write(style.green('nothing to apply: every stack is up to date\n'));
    return PLAN_EXIT.ok;
  }
  if (!options.autoApprove) {
    const approved = await options.confirm(
      `Plan run ${plan.run}:\n${pending.map(approvalLine).join('\n')}\n` +
        `Apply ${pending.length === 1 ? 'this plan' : `these ${pending.length} plans`}? Only "yes" is accepted: `,
      guard.abort.signal,
    );
    if (guard.interrupted) {
      record.outcome = 'interrupted';
      return stopped(options, journal, guard.interrupted, undefined, 'approval');
    }
    if (!approved) {
      record.outcome = 'cancelled';
      options.write('deploy cancelled: nothing was applied\n');
      return PLAN_EXIT.error;
    }
  }
  record.outcome = 'failed';
  const code = await applyRun(planned, terraform, options, guard, journal);
  if (journal.interrupted) record.outcome = 'interrupted';
  else if (journal.finished) record.outcome = 'applied';
  else if (!journal.failed) record.outcome = 'cancelled'; // a stack planned during the deploy was not approved
  return code;
}

/** Records an interruption in the journal and says where the deploy stopped. */
function stopped(
  options: DeployOptions,
  journal: DeployJournal,
  interruption: Interruption,
  stack: string | undefined,
  step: string,
  terraform?: string,
): number {
  if (stack) journal.stacks[stack] = 'interrupted';
  journal.interrupted = {
    signal: interruption.signal,
    reason: interruption.reason,
    at: new Date().toISOString(),
    ...(stack ? { stack } : {}),
    step,
    ...(terraform ? { terraform } : {}),
  };
  writeJournal(options.projectDir, journal);
  options.write(
    style.red(
      `deploy interrupted (${interruption.reason}) ${stack ? `at ${stack}, ` : ''}${step}${terraform ? `: ${terraform}` : ''}. ` +
        `Run ${MESHFORM} deploy again to continue with what is left\n`,
    ),
  );
  return interruption.exitCode;
}

/** Keeps the configuration of every stack that is applied and unchanged (what destroys it once it leaves). */
function keepUnchanged(projectDir: string, { plan, stackRuns }: PlanWithSynthesis): void {
  const cache = cacheDirectory(projectDir);
  for (const stack of plan.stacks) {
    if (stack.destroy || !stack.summary?.applied || !isEmptyPlan(stack.summary)) continue;
    keepAppliedConfiguration(cache, stackRuns.get(stack.stack)!.dir, stack);
  }
}

async function applyRun(
  planned: PlanWithSynthesis,
  terraform: TerraformEnvironment,
  options: DeployOptions,
  guard: RunGuard,
  journal: DeployJournal,
): Promise<number> {
  const { plan, stackRuns } = planned;
  writeJournal(options.projectDir, journal);
  keepUnchanged(options.projectDir, planned);
  const byName = new Map(plan.stacks.map((s) => [s.stack, s]));
  const goes = plan.stacks.filter((s) => s.destroy);
  const stays = plan.stacks.filter((s) => !s.destroy);
  // what left the app goes first, dependants before what they depend on; then the app in dependency order
  const order = [...dependencyOrder(goes).reverse(), ...dependencyOrder(stays)];
  for (const name of order) {
    const stack = byName.get(name)!;
    if (journal.stacks[name] === 'unchanged') {
      options.write(style.dim(`${name}: no changes\n`));
      continue;
    }
    if (guard.interrupted) return stopped(options, journal, guard.interrupted, name, 'before terraform apply');
    const run = stackRuns.get(name)!;
    if (stack.remote) {
      const code = await applyRemote(stack, run.dir, options, guard, journal);
      if (code !== undefined) return code;
      continue;
    }
    const workspace = new StackWorkspace(
      run.dir,
      terraform,
      { offline: false, environment: run.environment },
      undefined,
    );
    let planFile = stack.planFile && path.resolve(options.projectDir, stack.planFile);
    let sha256 = stack.planSha256;
    if (!planFile) {
      // not planned up front because something upstream had not been applied yet: plan it now, in this run
      const replanned = await replan(workspace, stack, planned.run.dir, options, guard);
      if (guard.interrupted) return stopped(options, journal, guard.interrupted, name, 'terraform plan');
      if (typeof replanned === 'number') {
        journal.stacks[name] = 'failed';
        journal.failed = { stack: name, reason: 'planning after its upstream was applied failed' };
        writeJournal(options.projectDir, journal);
        return replanned;
      }
      if (replanned === undefined) {
        journal.stacks[name] = 'unchanged';
        continue;
      }
      ({ planFile, sha256 } = replanned);
    } else if (!fs.existsSync(planFile) || fileSha256(planFile) !== sha256) {
      // only the approved plan of this run is applied
      const reason = `its saved plan ${stack.planFile} is not the one approved (sha256 ${sha256})`;
      journal.stacks[name] = 'failed';
      journal.failed = { stack: name, reason };
      writeJournal(options.projectDir, journal);
      options.write(style.red(`${name}: not applied: ${reason}. Run ${MESHFORM} deploy again to plan anew\n`));
      return PLAN_EXIT.error;
    }
    options.write(
      style.bold(`${name}: terraform apply${stack.destroy ? ' (destroy)' : ''} of plan sha256 ${sha256}\n`),
    );
    const applied = await workspace.run(['apply', '-input=false', '-no-color', planFile], 3_600_000);
    if (guard.interrupted) {
      return stopped(
        options,
        journal,
        guard.interrupted,
        name,
        'terraform apply',
        applied.code === 0
          ? 'terraform finished the apply'
          : `terraform stopped (exit ${applied.code}) and saved its state: ${terraformError(applied.stderr || applied.stdout)}`,
      );
    }
    if (applied.code !== 0) {
      const error = terraformDiagnostics(applied.stderr || applied.stdout);
      const reason = terraformError(applied.stderr || applied.stdout, 2) || `exit ${applied.code}`;
      journal.stacks[name] = 'failed';
      journal.failed = { stack: name, reason, error };
      writeJournal(options.projectDir, journal);
      options.write(
        style.red(
          `${name}: apply failed: ${reason}\n${indent(error)}\nstopped here; fix the cause and run ${MESHFORM} deploy again to continue with the remaining stacks\n`,
        ),
      );
      return PLAN_EXIT.error;
    }
    recordApplied(options, journal, stack, run.dir);
  }
  journal.finished = new Date().toISOString();
  writeJournal(options.projectDir, journal);
  options.write(style.green('deploy complete\n'));
  return PLAN_EXIT.ok;
}

/** Marks a stack failed in the journal and says why; the deploy stops there. */
function failStack(options: DeployOptions, journal: DeployJournal, name: string, reason: string): number {
  journal.stacks[name] = 'failed';
  journal.failed = { stack: name, reason };
  writeJournal(options.projectDir, journal);
  options.write(
    style.red(
      `${name}: apply failed: ${reason}\nstopped here; fix the cause and run ${MESHFORM} deploy again to continue with the remaining stacks\n`,
    ),
  );
  return PLAN_EXIT.error;
}

/**
 * Applies the saved plan run a stack in Terraform Cloud was planned with in this deploy: exactly that run,
 * confirmed through the API and followed until it is applied. Returns an exit code when the deploy stops here.
 */
async function applyRemote(
  stack: StackPlan,
  stackDir: string,
  options: DeployOptions,
  guard: RunGuard,
  journal: DeployJournal,
): Promise<number | undefined> {
  const remote = stack.remote!;
  const name = stack.stack;
  const cloud =
    (
      JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8')) as {
        terraform?: { cloud?: { hostname?: string; organization?: string; workspaces?: { name?: string } } };
      }
    ).terraform?.cloud ?? {};
  const hostname = cloud.hostname ?? 'app.terraform.io';
  const token = terraformCloudToken(hostname);
  if (!token)
    return failStack(
      options,
      journal,
      name,
      `no token for ${hostname} (${tokenVariable(hostname)}, TFE_TOKEN or terraform login)`,
    );
  let baseUrl: string;
  try {
    baseUrl = options.terraformCloudBaseUrl?.(hostname) ?? terraformCloudBaseUrl(hostname);
  } catch (e) {
    return failStack(options, journal, name, (e as Error).message);
  }
  options.write(
    style.bold(
      `${name}: apply of Terraform Cloud run ${remote.run}${stack.destroy ? ' (destroy)' : ''} (${remote.url})\n`,
    ),
  );
  const outcome = await applyInTerraformCloud({
    target: { hostname, organization: cloud.organization ?? '', workspace: cloud.workspaces?.name ?? '' },
    baseUrl,
    token,
    run: remote.run,
    url: remote.url,
    comment: `meshform deploy of ${name}, approved in plan run ${journal.run}`,
    ...(options.terraformCloudPollMs ? { pollMs: options.terraformCloudPollMs } : {}),
    signal: guard.abort.signal,
    progress: (message) => options.progress?.step(`${name}: ${message}`),
  });
  if (guard.interrupted)
    return stopped(
      options,
      journal,
      guard.interrupted,
      name,
      'Terraform Cloud apply',
      outcome.kind === 'applied' ? 'the run was applied' : `the run may still be applying: ${remote.url}`,
    );
  if (outcome.kind !== 'applied')
    return failStack(
      options,
      journal,
      name,
      outcome.kind === 'cannot-tell' ? `whether it was applied cannot be told: ${outcome.reason}` : outcome.reason,
    );
  recordApplied(options, journal, stack, stackDir);
  return undefined;
}

/** Records a stack applied (its configuration kept, to destroy it once it leaves) or destroyed. */
function recordApplied(options: DeployOptions, journal: DeployJournal, stack: StackPlan, stackDir: string): void {
  const cache = cacheDirectory(options.projectDir);
  const name = stack.stack;
  if (stack.destroy) {
    journal.stacks[name] = 'destroyed';
    fs.rmSync(appliedConfigurationDir(cache, name), { recursive: true, force: true });
    options.write(style.green(`${name}: destroyed\n`));
  } else {
    journal.stacks[name] = 'applied';
    keepAppliedConfiguration(cache, stackDir, stack);
    options.write(style.green(`${name}: applied\n`));
  }
  writeJournal(options.projectDir, journal);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** Plans a stack whose upstream was applied during this deploy; asks again unless auto-approved. */
async function replan(
  workspace: StackWorkspace,
  stack: StackPlan,
  runDir: string,
  options: DeployOptions,
  guard: RunGuard,
): Promise<{ planFile: string; sha256: string } | undefined | number> {
  options.write(style.bold(`${stack.stack}: terraform plan (its upstream is applied now)\n`));
  const init = await workspace.run(['init', '-input=false', '-no-color']);
  const planFile = path.join(runDir, 'plans', `${stack.stack}.tfplan`);
  const planned =
    init.code === 0
      ? await workspace.run(['plan', '-input=false', '-no-color', '-detailed-exitcode', `-out=${planFile}`])
      : init;
  if (guard.interrupted) return PLAN_EXIT.error;
  if (planned.code === 0) {
    options.write(style.dim(`${stack.stack}: no changes\n`));
    return undefined;
  }
  if (planned.code !== 2) {
    options.write(
      style.red(`${stack.stack}: plan failed:\n${indent(terraformDiagnostics(planned.stderr || planned.stdout))}\n`),
    );
    return PLAN_EXIT.error;
  }
  fs.chmodSync(planFile, 0o600);
  const sha256 = fileSha256(planFile);
  options.write(
    planned.stdout
      .split('\n')
      .filter((l) => /^\s+[#+~-]|Plan:/.test(l))
      .join('\n') + '\n',
  );
  if (
    !options.autoApprove &&
    !(await options.confirm(
      `Apply ${stack.stack} (plan ${path.relative(options.projectDir, planFile)} sha256 ${sha256})? Only "yes" is accepted: `,
      guard.abort.signal,
    ))
  )
    return PLAN_EXIT.error;
  return { planFile, sha256 };
}
