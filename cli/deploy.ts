/**
 * `meshform deploy`: plan, ask for approval (gates must be acknowledged), then apply stack by stack in
 * dependency order. A failure stops there; a re-run plans again and continues with what is left (stacks
 * already applied plan to no change).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, style } from './output';
import {
  cacheDirectory,
  dependencyOrder,
  PLAN_EXIT,
  PlanOptions,
  planWithSynthesis,
  PlanWithSynthesis,
  savedPlanPath,
  StackPlan,
} from './plan';
import { renderPlanText } from './plan-render';
import { variableEnvironment, StackWorkspace, TerraformEnvironment, terraformError } from './terraform';
import { isEmptyPlan } from './terraform-plan';

/** What a deploy did to each stack, kept between runs so a re-run says where it resumes. */
interface DeployJournal {
  readonly stacks: { [stack: string]: 'applied' | 'failed' | 'unchanged' | 'pending' };
  readonly failed?: { readonly stack: string; readonly reason: string };
}

/** Options of a deploy. */
export interface DeployOptions extends Omit<PlanOptions, 'offline' | 'terraform'> {
  /** Apply without asking; refused when a gate fires that is not acknowledged. */
  readonly autoApprove: boolean;
  /** Asks the user to approve; resolves true to go on. */
  readonly confirm: (question: string) => boolean;
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
  fs.writeFileSync(journalFile(projectDir), `${JSON.stringify(journal, null, 2)}\n`);
}

/** Plans, asks, applies; returns the exit code. */
export async function deployProject(options: DeployOptions): Promise<number> {
  const previous = readJournal(options.projectDir);
  if (previous?.failed) {
    options.write(
      style.yellow(
        `resuming: the last deploy stopped at ${previous.failed.stack} (${previous.failed.reason}); already applied: ${
          Object.entries(previous.stacks)
            .filter(([, s]) => s === 'applied')
            .map(([n]) => n)
            .join(', ') || 'none'
        }\n`,
      ),
    );
  }
  const planned = await planWithSynthesis({ ...options, offline: false, terraform: true });
  const { plan } = planned;
  options.write(renderPlanText(plan));
  const blocked = plan.meshes.flatMap((m) => m.gates).filter((g) => !g.acknowledged);
  if (blocked.length > 0) {
    options.write(
      style.red(
        `deploy refused: ${blocked.length} gate${blocked.length === 1 ? '' : 's'} not acknowledged (${blocked.map((g) => g.acknowledgeWith).join(', ')})\n`,
      ),
    );
    return PLAN_EXIT.gated;
  }
  const terraform = planned.terraform;
  if (!terraform) throw new CliError(`deploy needs terraform: ${plan.terraform.reason}`);
  const failedToPlan = plan.stacks.filter((s) => s.status === 'failed');
  if (failedToPlan.length > 0) {
    options.write(style.red(`deploy refused: ${failedToPlan.map((s) => s.stack).join(', ')} could not be planned\n`));
    return PLAN_EXIT.error;
  }
  const unplannable = plan.stacks.filter((s) => s.status === 'not-planned' && !s.reason?.startsWith('upstream'));
  if (unplannable.length > 0) {
    options.write(
      style.red(
        `deploy refused: cannot plan ${unplannable.map((s) => `${s.stack} (${s.reason})`).join('; ')}. ` +
          'Fix what keeps them from planning here, or apply Terraform Cloud workspaces in Terraform Cloud\n',
      ),
    );
    return PLAN_EXIT.error;
  }
  const pending = plan.stacks.filter((s) => s.status === 'not-planned' || (s.summary && !isEmptyPlan(s.summary)));
  if (pending.length === 0) {
    writeJournal(options.projectDir, { stacks: Object.fromEntries(plan.stacks.map((s) => [s.stack, 'unchanged'])) });
    options.write(style.green('nothing to apply: every stack is up to date\n'));
    return PLAN_EXIT.ok;
  }
  if (
    !options.autoApprove &&
    !options.confirm(
      `Apply ${pending.length} stack${pending.length === 1 ? '' : 's'} (${pending.map((s) => s.stack).join(', ')})? Only "yes" is accepted: `,
    )
  ) {
    options.write('deploy cancelled\n');
    return PLAN_EXIT.error;
  }
  return applyInOrder(planned, terraform, options);
}

async function applyInOrder(
  { plan, synthesis, secrets, stackJson }: PlanWithSynthesis,
  terraform: TerraformEnvironment,
  options: DeployOptions,
): Promise<number> {
  const journal: DeployJournal = { stacks: Object.fromEntries(plan.stacks.map((s) => [s.stack, 'pending'])) };
  const byName = new Map(plan.stacks.map((s) => [s.stack, s]));
  for (const name of dependencyOrder(plan.stacks)) {
    const stack = byName.get(name)!;
    if (stack.summary && isEmptyPlan(stack.summary)) {
      journal.stacks[name] = 'unchanged';
      options.write(style.dim(`${name}: no changes\n`));
      continue;
    }
    const stackDir = path.join(synthesis.result.outdir, 'stacks', name);
    const workspace = new StackWorkspace(
      stackDir,
      terraform,
      { offline: false, environment: variableEnvironment(stackJson.get(name)!, secrets) },
      undefined,
    );
    let planFile = stack.planFile;
    if (!planFile) {
      // not planned up front because something upstream had not been applied yet: plan it now
      const replanned = await replan(workspace, stack, options);
      if (typeof replanned === 'number') {
        journal.stacks[name] = 'failed';
        writeJournal(options.projectDir, {
          ...journal,
          failed: { stack: name, reason: 'planning after its upstream failed' },
        });
        return replanned;
      }
      if (replanned === undefined) {
        journal.stacks[name] = 'unchanged';
        continue;
      }
      planFile = replanned;
    }
    options.write(style.bold(`${name}: terraform apply\n`));
    const applied = await workspace.run(['apply', '-input=false', '-no-color', planFile], 3_600_000);
    if (applied.code !== 0) {
      const reason = terraformError(applied.stderr || applied.stdout, 2) || `exit ${applied.code}`;
      journal.stacks[name] = 'failed';
      writeJournal(options.projectDir, { ...journal, failed: { stack: name, reason } });
      options.write(
        style.red(
          `${name}: apply failed: ${reason}\nstopped here; fix the cause and run meshform deploy again to continue with the remaining stacks\n`,
        ),
      );
      return PLAN_EXIT.error;
    }
    journal.stacks[name] = 'applied';
    writeJournal(options.projectDir, journal);
    options.write(style.green(`${name}: applied\n`));
  }
  writeJournal(options.projectDir, journal);
  options.write(style.green('deploy complete\n'));
  return PLAN_EXIT.ok;
}

/** Plans a stack whose upstream was applied during this deploy; asks again unless auto-approved. */
async function replan(
  workspace: StackWorkspace,
  stack: StackPlan,
  options: DeployOptions,
): Promise<string | undefined | number> {
  options.write(style.bold(`${stack.stack}: terraform plan (its upstream is applied now)\n`));
  const init = await workspace.run(['init', '-input=false', '-no-color']);
  const planFile = savedPlanPath(cacheDirectory(options.projectDir), stack.stack);
  const planned =
    init.code === 0
      ? await workspace.run(['plan', '-input=false', '-no-color', '-detailed-exitcode', `-out=${planFile}`])
      : init;
  if (planned.code === 0) {
    options.write(style.dim(`${stack.stack}: no changes\n`));
    return undefined;
  }
  if (planned.code !== 2) {
    options.write(style.red(`${stack.stack}: plan failed: ${terraformError(planned.stderr || planned.stdout)}\n`));
    return PLAN_EXIT.error;
  }
  options.write(
    planned.stdout
      .split('\n')
      .filter((l) => /^\s+[#+~-]|Plan:/.test(l))
      .join('\n') + '\n',
  );
  fs.chmodSync(planFile, 0o600);
  if (!options.autoApprove && !options.confirm(`Apply ${stack.stack}? Only "yes" is accepted: `))
    return PLAN_EXIT.error;
  return planFile;
}
