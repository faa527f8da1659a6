/**
 * The integration tier: apply AWS stacks to an AWS-compatible endpoint (moto, LocalStack or any emulator), check
 * Terraform's acceptance rules — the plan right after apply is empty, a second apply changes nothing — then
 * destroy and check the endpoint holds none of the stack's resources (by the state of before destroy, refreshed,
 * and by its tags). A recognised emulator's differences from AWS are handled as cli/emulators.ts lists them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DestroyQuirk,
  destroyQuirks,
  EmulatorProfile,
  FilteredAttribute,
  NotApplied,
  quirkOverride,
  unsupportedResources,
} from './emulators';
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
  /** Resources left out of the apply because the emulator lacks their API (the stack is validated and planned whole). */
  readonly notApplied: readonly NotApplied[];
  /** Attributes ignored after create because the emulator reports them differently from AWS. */
  readonly filtered: readonly FilteredAttribute[];
  /** The emulator's destroy quirks that made the tier destroy once more (the first destroy's errors were all these). */
  readonly destroyRetried: readonly DestroyQuirk[];
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
  /** The emulator behind the endpoint, when recognised: its missing APIs and quirks (cli/emulators.ts). */
  readonly emulator?: EmulatorProfile;
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
  readonly resource?: { readonly [type: string]: { readonly [name: string]: { readonly [key: string]: unknown } } };
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

/**
 * Which of `secrets` (environment name and value) appear in any of `texts`: whole, JSON-escaped, or any long
 * line of a multi-line value (a PEM re-wrapped in a document).
 */
export function secretsIn(texts: readonly string[], secrets: readonly (readonly [string, string])[]): string[] {
  return secrets
    .filter(([, value]) =>
      [value, ...value.split('\n').filter((line) => line.length >= 40)].some((piece) =>
        texts.some((text) => text.includes(piece) || text.includes(JSON.stringify(piece).slice(1, -1))),
      ),
    )
    .map(([env]) => env.replace(/^TF_VAR_/, ''));
}

/** A resource of the AWS provider in a Terraform state file: its address and the ids it is known by. */
export interface StateResource {
  readonly address: string;
  readonly id?: string;
  readonly arn?: string;
}

/** The AWS provider's managed resources in a state file (JSON), one per instance. */
export function awsStateResources(state: string): StateResource[] {
  const parsed = JSON.parse(state) as {
    resources?: {
      mode: string;
      type: string;
      name: string;
      module?: string;
      provider: string;
      instances: { index_key?: string | number; attributes?: { id?: unknown; arn?: unknown } }[];
    }[];
  };
  return (parsed.resources ?? [])
    .filter((r) => r.mode === 'managed' && /\/hashicorp\/aws"\]$/.test(r.provider))
    .flatMap((r) =>
      r.instances.map((i) => {
        const key = i.index_key === undefined ? '' : `[${JSON.stringify(i.index_key)}]`;
        const id = i.attributes?.id;
        const arn = i.attributes?.arn;
        return {
          address: `${r.module ? `${r.module}.` : ''}${r.type}.${r.name}${key}`,
          ...(typeof id === 'string' && id ? { id } : {}),
          ...(typeof arn === 'string' && arn ? { arn } : {}),
        };
      }),
    );
}

/** One message of Terraform's machine-readable UI (`-json`). */
interface JsonMessage {
  readonly type?: string;
  readonly change?: { readonly action?: string; readonly resource?: { readonly addr?: string } };
  readonly diagnostic?: { readonly severity?: string; readonly summary?: string };
}

/** The messages of a `-json` run's output, one per line. */
function jsonMessages(jsonLines: string): JsonMessage[] {
  return jsonLines
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonMessage);
}

/** The addresses a `plan -refresh-only -json` run reports as deleted outside Terraform (gone from the endpoint). */
export function goneAddresses(jsonLines: string): Set<string> {
  return new Set(
    jsonMessages(jsonLines).flatMap((m) =>
      m.type === 'resource_drift' && m.change?.action === 'delete' && m.change.resource?.addr
        ? [m.change.resource.addr]
        : [],
    ),
  );
}

/** The error diagnostics of a `-json` run, on one line. */
function jsonErrors(jsonLines: string): string {
  return jsonMessages(jsonLines)
    .filter((m) => m.type === 'diagnostic' && m.diagnostic?.severity === 'error')
    .map((m) => `Error: ${m.diagnostic!.summary}`)
    .join(' ');
}

/**
 * The tagged ARNs that are none of the stack's own resources (by ARN, or an ARN ending in the resource's id):
 * resources made on the stack's behalf and left behind. The stack's own resources are judged by the refresh,
 * which knows that a terminated instance or a key pending deletion is gone.
 */
export function untrackedArns(arns: readonly string[], own: readonly StateResource[]): string[] {
  const ids = new Set(own.flatMap((r) => (r.id ? [r.id] : [])));
  const ownArns = new Set(own.flatMap((r) => (r.arn ? [r.arn] : [])));
  return arns.filter((arn) => !ownArns.has(arn) && !ids.has(arn) && !ids.has(arn.split(/[/:]/).pop() ?? ''));
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Runs one stack through apply, empty re-plan, optional second apply, destroy and the leftover checks. */
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
  const notApplied = unsupportedResources(json, options.emulator);
  const { override, filtered } = quirkOverride(json, options.emulator);
  if (override)
    fs.writeFileSync(
      path.join(workspace.dir, 'zz_meshform_emulator_override.tf.json'),
      JSON.stringify(override, null, 2),
    );
  // where the emulator lacks an API: apply every other resource (-target), and validate and plan the whole stack
  const left = new Set(notApplied.map((n) => n.address));
  const all = Object.entries(json.resource ?? {}).flatMap(([type, byName]) =>
    Object.keys(byName).map((n) => `${type}.${n}`),
  );
  const targets = left.size ? all.filter((a) => !left.has(a)).map((a) => `-target=${a}`) : [];

  const steps: { step: string; ok: boolean; seconds: number; note?: string }[] = [];
  const destroyRetried: DestroyQuirk[] = [];
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
  const emptyPlan = (r: { code: number; stdout: string; stderr: string }) =>
    r.code === 0
      ? undefined
      : r.code === 2
        ? `the plan right after apply is not empty (perpetual diff): ${changed(r.stdout)}`
        : failedBy(r);

  let failure = await step('init', ['init', '-input=false', '-no-color'], failedBy);
  if (!failure && left.size) {
    // plan validates first, as `terraform validate` does (hashicorp/terraform internal/backend/local/
    // backend_local.go, localRun: "If validation is enabled, validate", Core.Validate before the plan)
    failure = await step(
      `validate + plan (whole stack, ${plural(all.length, 'resource')})`,
      ['plan', '-input=false', '-no-color', '-detailed-exitcode'],
      (r) => (r.code === 2 ? undefined : r.code === 0 ? 'the plan of the whole stack is empty' : failedBy(r)),
    );
  }
  const provider = json.provider?.aws?.[0];
  const tags = provider?.default_tags?.[0]?.tags;
  const region = provider?.region ?? 'us-east-1';
  // what carries the stack's tags before it is applied (an earlier run's terminated instances) is not this run's
  let baseline: string[] = [];
  if (!failure && tags) {
    try {
      baseline = await options.leftovers(tags, region);
    } catch (e) {
      failure = `could not list the endpoint's tagged resources: ${(e as Error).message}`;
    }
  }
  let applied = false;
  if (!failure) {
    const name = left.size ? `apply (${all.length - left.size} of ${all.length} resources)` : 'apply';
    failure = await step(name, ['apply', '-input=false', '-no-color', '-auto-approve', ...targets], failedBy);
    applied = true;
  }
  if (!failure)
    failure = await step(
      'plan after apply',
      ['plan', '-input=false', '-no-color', '-detailed-exitcode', ...targets],
      emptyPlan,
    );
  if (!failure && options.secondApply) {
    failure = await step(
      'second apply',
      ['apply', '-input=false', '-no-color', '-auto-approve', ...targets],
      (r) =>
        failedBy(r) ??
        (/\b0 added, 0 changed, 0 destroyed\b/.test(r.stdout) || /No changes\./.test(r.stdout)
          ? undefined
          : `a second apply changed something: ${changed(r.stdout)}`),
    );
  }
  if (applied) {
    const statePath = path.join(workspace.dir, 'meshform.tfstate');
    const before = fs.existsSync(statePath) ? fs.readFileSync(statePath, 'utf8') : undefined;
    // no secret the stack was given is in its state: not in the file, not as `terraform show -json` reads it
    const secrets = Object.entries(variables).filter(([env]) => !env.endsWith('_secrets_version'));
    if (secrets.length && before !== undefined) {
      const problem = await step('no secret in state', ['show', '-json', '-no-color'], (r) => {
        if (r.code !== 0) return failedBy(r);
        const leaked = secretsIn([before, r.stdout], secrets);
        return leaked.length ? `the state holds the value of ${leaked.join(', ')}` : undefined;
      });
      failure ??= problem;
    }
    // destroy even after a failure: the endpoint is left as it was found
    const destroy = ['destroy', '-input=false', '-no-color', '-auto-approve'];
    let quirks: DestroyQuirk[] | undefined;
    let destroyFailure = await step('destroy', destroy, (r) => {
      quirks = r.code === 0 ? undefined : destroyQuirks(r.stderr || r.stdout, options.emulator);
      return failedBy(r);
    });
    if (destroyFailure && quirks) {
      // every error is a listed destroy quirk of the emulator: once more, and the stack stands or falls by that
      destroyRetried.push(...quirks);
      destroyFailure = await step('destroy again (emulator quirk)', destroy, failedBy);
      failure ??= destroyFailure;
    } else if (destroyFailure) {
      failure ??= destroyFailure;
      // a failed destroy has failed the stack; once more, only so that what it left is cleaned up
      destroyFailure = await step('destroy again (cleanup)', destroy, failedBy);
    }
    const own = before ? awsStateResources(before) : [];
    // both checks run whatever failed before (a failure above does not skip them)
    if (!destroyFailure && own.length) {
      const leftover = await leftByState(before!, own, statePath);
      failure ??= leftover;
    }
    if (!destroyFailure && tags) {
      const leftover = await leftByTags(tags, region, baseline, own);
      failure ??= leftover;
    }
  }
  if (!failure) fs.rmSync(workspace.dir, { recursive: true, force: true });
  return {
    group: stack.group,
    stack: stack.stack,
    ok: !failure,
    steps,
    notApplied,
    filtered,
    destroyRetried,
    ...(failure ? { failure, logs: path.join(workspace.dir, 'meshform-terraform.log') } : {}),
  };

  /**
   * Every AWS resource the stack held before destroy is gone from the endpoint: the state of before destroy, refreshed
   * (each resource read through the provider), must report each one deleted. The emptied state is put back after.
   */
  async function leftByState(before: string, own: readonly StateResource[], statePath: string) {
    const emptied = fs.readFileSync(statePath);
    fs.writeFileSync(statePath, before, { mode: 0o600 });
    const problem = await step(
      'nothing left (by state)',
      ['plan', '-refresh-only', '-json', '-input=false', '-no-color'],
      (r) => {
        if (r.code !== 0 && r.code !== 2)
          return `could not refresh the state of before destroy: ${jsonErrors(r.stdout) || failedBy(r)}`;
        const gone = goneAddresses(r.stdout);
        const still = own.filter((o) => !gone.has(o.address)).map((o) => o.address);
        return still.length
          ? `${plural(still.length, 'resource')} of the stack still on the endpoint after destroy: ${still.slice(0, 5).join(', ')}`
          : undefined;
      },
    );
    fs.writeFileSync(statePath, emptied, { mode: 0o600 });
    return problem;
  }

  /**
   * Nothing made on the stack's behalf carries its tags any more (through the endpoint's Tagging API): what was
   * there before apply and the stack's own resources (judged by the refresh) aside.
   */
  async function leftByTags(
    tags: { readonly [key: string]: string },
    region: string,
    before: readonly string[],
    own: readonly StateResource[],
  ) {
    const started = Date.now();
    let note: string | undefined;
    try {
      const left = untrackedArns(await options.leftovers(tags, region), own).filter((a) => !before.includes(a));
      note = left.length
        ? `${plural(left.length, 'resource')} tagged ${Object.entries(tags)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')} left after destroy: ${left.slice(0, 5).join(', ')}`
        : undefined;
    } catch (e) {
      note = `could not list the endpoint's tagged resources: ${(e as Error).message}`;
    }
    steps.push({
      step: 'nothing left (by tags)',
      ok: !note,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      ...(note ? { note } : {}),
    });
    return note;
  }
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

/** The report of a run: a line per stack, what each left out or filtered, and the evidence for each difference. */
export function renderIntegration(outcomes: readonly IntegrationOutcome[], emulator?: EmulatorProfile): string {
  const out: string[] = [];
  const count = (items: readonly string[]) =>
    [...new Set(items)].map((i) => {
      const n = items.filter((x) => x === i).length;
      return n > 1 ? `${i} ×${n}` : i;
    });
  for (const o of outcomes) {
    out.push(
      `${o.ok ? 'ok  ' : 'FAIL'} ${o.group}/${o.stack}  ${o.steps.map((s) => `${s.step} ${s.ok ? '✓' : '✗'} (${s.seconds}s)`).join(', ')}`,
    );
    if (o.notApplied.length)
      out.push(
        `     not applied (the emulator lacks their API; validated and planned with the whole stack): ${count(
          o.notApplied.map((n) => (n.reason.startsWith('depends on ') ? n.address : n.address.split('.')[0]!)),
        ).join(', ')}`,
      );
    if (o.filtered.length)
      out.push(
        `     emulator quirks filtered (ignore_changes): ${count(o.filtered.map((f) => `${f.address.split('.')[0]}.${f.attribute}`)).join(', ')}`,
      );
    for (const q of o.destroyRetried)
      out.push(
        `     destroyed once more: the first destroy failed only with the emulator's destroy quirk of ${q.resourceTypes.join(', ')}`,
      );
    if (!o.ok) out.push(`     ${o.failure}`, `     logs: ${o.logs}`);
  }
  if (emulator && outcomes.some((o) => o.notApplied.length || o.filtered.length || o.destroyRetried.length)) {
    out.push(
      `${emulator.name} differences from AWS applied in this run (cli/emulators.ts; read in ${emulator.source}):`,
    );
    for (const m of emulator.missingApis)
      if (outcomes.some((o) => o.notApplied.some((n) => n.address.startsWith(`${m.resourceType}.`))))
        out.push(`  - ${m.resourceType}: lacks ${m.api}. ${m.evidence}`);
    for (const q of emulator.quirks)
      if (
        outcomes.some((o) =>
          o.filtered.some((f) => f.address.startsWith(`${q.resourceType}.`) && f.attribute === q.attribute),
        )
      )
        out.push(`  - ${q.resourceType}.${q.attribute}: ${q.evidence}`);
    for (const q of emulator.destroyQuirks)
      if (outcomes.some((o) => o.destroyRetried.includes(q)))
        out.push(`  - destroying ${q.resourceTypes.join(', ')}: ${q.evidence}`);
  }
  const failed = outcomes.filter((o) => !o.ok).length;
  const partial = outcomes.filter((o) => o.notApplied.length).length;
  out.push(
    failed
      ? `${failed} of ${plural(outcomes.length, 'stack')} failed`
      : `${plural(outcomes.length, 'stack')} applied, re-planned empty and destroyed` +
          (partial
            ? ` (${partial} in part: the resources the emulator cannot create were validated and planned, not applied)`
            : ''),
  );
  return `${out.join('\n')}\n`;
}
