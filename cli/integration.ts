/**
 * The integration tier: apply AWS stacks to an AWS-compatible endpoint (LocalStack or any emulator), check
 * Terraform's acceptance rules — the plan right after apply is empty, a second apply changes nothing — then
 * destroy and check the endpoint holds none of the stack's resources (by its tags).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lock, pool, StackWorkspace, TerraformEnvironment, terraformError, variableEnvironment } from './terraform';

/** A synthesized stack to run. */
export interface IntegrationStack {
  /** Where it comes from (an example), for logs and the report. */
  readonly group: string;
  readonly stack: string;
  /** Its synthesized directory. */
  readonly dir: string;
  /** Values of its variables (secrets), passed as TF_VAR_*. */
  readonly variables: { readonly [name: string]: string };
}

/** What happened to one stack. */
export interface IntegrationOutcome {
  readonly group: string;
  readonly stack: string;
  readonly ok: boolean;
  readonly steps: readonly {
    readonly step: string;
    readonly ok: boolean;
    readonly seconds: number;
    readonly note?: string;
  }[];
  /** Why it failed. */
  readonly failure?: string;
  /** Where its logs are kept (failures only). */
  readonly logs?: string;
}

/** Options of a run. */
export interface IntegrationOptions {
  readonly env: TerraformEnvironment;
  readonly workRoot: string;
  readonly parallelism: number;
  /** Apply a second time and require that nothing changes. */
  readonly secondApply: boolean;
  /** Resources still carrying all these tags after destroy (ARNs); the stack's provider default tags are passed. */
  readonly leftovers: (tags: { readonly [key: string]: string }, region: string) => Promise<string[]>;
  readonly report?: (line: string) => void;
}

interface StackJson {
  readonly provider?: {
    readonly aws?: readonly {
      readonly region?: string;
      readonly default_tags?: readonly { readonly tags?: { readonly [key: string]: string } }[];
    }[];
  };
  readonly variable?: { readonly [name: string]: { readonly default?: unknown } };
}

/** The resources or outputs a non-empty plan would change, from Terraform's human output. */
function changed(output: string): string {
  const lines = output
    .split('\n')
    .filter((l) => /^\s+# \S+ (will|must) be /.test(l))
    .map((l) => l.trim().replace(/^# /, ''));
  return lines.length
    ? lines.slice(0, 8).join('; ')
    : (output.split('\n').find((l) => l.startsWith('Plan:') || l.includes('Changes to Outputs')) ?? 'changes').trim();
}

/** Runs one stack through apply, empty re-plan, optional second apply, destroy and the leftover check. */
async function runStack(
  stack: IntegrationStack,
  options: IntegrationOptions,
  initLock: Lock,
): Promise<IntegrationOutcome> {
  const json = JSON.parse(fs.readFileSync(path.join(stack.dir, 'cdk.tf.json'), 'utf8')) as StackJson;
  const variables = variableEnvironment(json, stack.variables);
  const workRoot = path.join(options.workRoot, stack.group);
  const workspace = new StackWorkspace(
    stack.dir,
    options.env,
    { offline: true, keepProviders: true, pluginCache: path.join(options.workRoot, 'plugins'), environment: variables },
    workRoot,
  );
  const steps: { step: string; ok: boolean; seconds: number; note?: string }[] = [];
  const step = async (
    name: string,
    args: string[],
    accept: (r: { code: number; stdout: string; stderr: string }) => string | undefined,
  ) => {
    const started = Date.now();
    options.report?.(`${stack.group}/${stack.stack}: ${name}`);
    // init installs into the shared plugin cache, which is not safe for concurrent installs
    const result = await (args[0] === 'init'
      ? initLock.run(() => workspace.run(args))
      : workspace.run(args, 3_600_000));
    const problem = accept(result);
    steps.push({
      step: name,
      ok: problem === undefined,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      ...(problem ? { note: problem } : {}),
    });
    return problem;
  };
  const failedBy = (r: { code: number; stdout: string; stderr: string }) =>
    r.code === 0 ? undefined : terraformError(r.stderr || r.stdout) || `exit ${r.code}`;

  let failure = await step('init', ['init', '-input=false', '-no-color'], failedBy);
  let applied = false;
  if (!failure) {
    failure = await step('apply', ['apply', '-input=false', '-no-color', '-auto-approve'], failedBy);
    applied = true;
  }
  if (!failure) {
    failure = await step('plan after apply', ['plan', '-input=false', '-no-color', '-detailed-exitcode'], (r) =>
      r.code === 0
        ? undefined
        : r.code === 2
          ? `the plan right after apply is not empty (perpetual diff): ${changed(r.stdout)}`
          : failedBy(r),
    );
  }
  if (!failure && options.secondApply) {
    failure = await step(
      'second apply',
      ['apply', '-input=false', '-no-color', '-auto-approve'],
      (r) =>
        failedBy(r) ??
        (/\b0 added, 0 changed, 0 destroyed\b/.test(r.stdout) || /No changes\./.test(r.stdout)
          ? undefined
          : `a second apply changed something: ${changed(r.stdout)}`),
    );
  }
  if (applied) {
    // destroy even after a failure: the endpoint is left as it was found
    const destroyFailure = await step('destroy', ['destroy', '-input=false', '-no-color', '-auto-approve'], failedBy);
    failure ??= destroyFailure;
    const provider = json.provider?.aws?.[0];
    const tags = provider?.default_tags?.[0]?.tags;
    if (!destroyFailure && tags) {
      const started = Date.now();
      try {
        const left = await options.leftovers(tags, provider?.region ?? 'us-east-1');
        const note = left.length
          ? `${left.length} resource${left.length === 1 ? '' : 's'} tagged ${Object.entries(tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')} left after destroy: ${left.slice(0, 5).join(', ')}`
          : undefined;
        steps.push({
          step: 'nothing left (by tags)',
          ok: !note,
          seconds: Math.round((Date.now() - started) / 100) / 10,
          ...(note ? { note } : {}),
        });
        failure ??= note;
      } catch (e) {
        const note = `could not list the endpoint's tagged resources: ${(e as Error).message}`;
        steps.push({ step: 'nothing left (by tags)', ok: false, seconds: 0, note });
        failure ??= note;
      }
    }
  }
  if (!failure) fs.rmSync(workspace.dir, { recursive: true, force: true });
  return {
    group: stack.group,
    stack: stack.stack,
    ok: !failure,
    steps,
    ...(failure ? { failure, logs: path.join(workspace.dir, 'meshform-terraform.log') } : {}),
  };
}

/** Runs every stack, `parallelism` at a time. */
export function runIntegration(
  stacks: readonly IntegrationStack[],
  options: IntegrationOptions,
): Promise<IntegrationOutcome[]> {
  const initLock = new Lock();
  return pool(
    stacks.map((s) => () => runStack(s, options, initLock)),
    options.parallelism,
  );
}

/** The report of a run. */
export function renderIntegration(outcomes: readonly IntegrationOutcome[]): string {
  const out: string[] = [];
  for (const o of outcomes) {
    out.push(
      `${o.ok ? 'ok  ' : 'FAIL'} ${o.group}/${o.stack}  ${o.steps.map((s) => `${s.step} ${s.ok ? '✓' : '✗'} (${s.seconds}s)`).join(', ')}`,
    );
    if (!o.ok) out.push(`     ${o.failure}`, `     logs: ${o.logs}`);
  }
  const failed = outcomes.filter((o) => !o.ok).length;
  out.push(
    failed
      ? `${failed} of ${outcomes.length} stacks failed`
      : `${outcomes.length} stacks applied, re-planned empty and destroyed`,
  );
  return `${out.join('\n')}\n`;
}
