/**
 * `meshform plan`: synthesize, then show the change in mesh terms against what every datacenter last applied
 * (its applied record, read from its state: never a synthesis), with a real `terraform plan` of every stack
 * that can be planned here, risk gates, and a picture. Whatever cannot be planned or read fails the plan
 * (exit 1), unless it is an allowed skip or an explicit assumption, which the plan lists.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diffMesh, MeshChange } from '../constructs/private/mesh-diff';
import {
  APPLIED_OUTPUT,
  MESH_MANIFEST_DIR,
  MeshManifest,
  mergeAppliedRecords,
  type AppliedRecord,
} from '../constructs/private/mesh-manifest';
import type { StateLocation } from '../constructs/state-backend';
import { SecretStore } from '../constructs/secret-store';
import {
  AppliedLookup,
  AppliedSource,
  readAppliedRecord,
  StackBackendJson,
  StateReading,
  terraformCloudToken,
} from './applied';
import { tokenVariable } from '../constructs/private/terraform-cloud-api';
import { CliError } from './output';
import { evaluateGates, Gate, UnreadableRecord, unevaluableGates } from './gates';
import { secretVariables } from './secrets';
import { renderPlanSvg } from './plan-svg';
import { RunGuard } from './signals';
import { cacheDirectory, withProjectLockAsync } from './synth';
import { MeshSynthesis, synthesizeMeshes } from './synth-meshes';
import {
  findProviderMirror,
  Lock,
  variableEnvironment,
  pool,
  terraformDiagnostics,
  terraformError,
  StackWorkspace,
  stackProviders,
  terraformAvailability,
  TerraformEnvironment,
} from './terraform';
import { planInTerraformCloud, RemotePlanMode, terraformCloudBaseUrl } from './terraform-cloud-plan';
import { isEmptyPlan, PlanJson, StackPlanSummary, summarizeTerraformPlan } from './terraform-plan';
import { readPlanFile } from './terraform-planfile';

/** Version of the plan document (`--json`); its schema is docs/plan.schema.json. */
export const PLAN_FORMAT = 2;

/**
 * Exit codes of `meshform plan` (and the plan step of `meshform deploy`): 0 no change (or changes, without
 * `--detailed-exitcode`), 2 changes (with it), 3 a gate blocked, 1 incomplete: a stack that should have been
 * planned was not, or a gate could not be evaluated. The first that applies of 1, 3, 2, 0.
 */
export const PLAN_EXIT = { ok: 0, error: 1, changes: 2, gated: 3 } as const;

/**
 * What happened to a stack: `planned` (here, or in Terraform Cloud: see `remote`); `failed` (it should have
 * been planned and was not: terraform init or plan failed, a provider or the backend is out of reach, its state
 * cannot be read, Terraform Cloud's API refused or its run failed); `skipped` (allowed: `--no-terraform`, or
 * offline with a provider not in the local mirror); `waiting` (something it depends on was never applied: it
 * is planned during deploy, after it).
 */
export type StackStatus = 'planned' | 'failed' | 'skipped' | 'waiting';

/** A plan Terraform Cloud made (a stack whose workspace runs remotely or on agents). */
export interface RemoteStackPlan {
  /** The run's id, e.g. `run-CZcmD7eagjhyX0vN`. */
  readonly run: string;
  /** The run's page in Terraform Cloud. */
  readonly url: string;
  /** `speculative` (plan-only, never applied) or `saved` (a saved plan run, confirmed in Terraform Cloud). */
  readonly mode: RemotePlanMode;
}

/** One stack's plan. */
export interface StackPlan {
  readonly stack: string;
  readonly mesh?: string;
  readonly datacenter?: string;
  readonly dependsOn: readonly string[];
  readonly status: StackStatus;
  /** The stack left the app but its state still holds what it applied: the plan destroys it. */
  readonly destroy?: boolean;
  readonly reason?: string;
  /** Terraform's whole error output (failed and waiting stacks). */
  readonly error?: string;
  readonly summary?: StackPlanSummary;
  /** The saved plan `meshform deploy` applies (online), relative to the project. */
  readonly planFile?: string;
  /** SHA-256 of the saved plan, shown in the approval and checked again before it is applied. */
  readonly planSha256?: string;
  /** Terraform Cloud made this plan: its run. */
  readonly remote?: RemoteStackPlan;
}

/** One datacenter's applied record lookup, as the plan reports it. */
export interface AppliedEntry {
  readonly stack: string;
  readonly datacenter: string;
  readonly source: AppliedSource;
  readonly detail: string;
  /** The datacenter left the app; what it applied is still in its state. */
  readonly removed?: boolean;
}

/** One mesh's plan. */
export interface MeshPlan {
  readonly mesh: string;
  /**
   * What the change is compared with: `nothing` applied, every datacenter's record (`applied`), some
   * datacenters' records (`partly-applied`: the others never applied), or `unreadable` (a record could not
   * be read and no assumption was stated: the gates that depend on it cannot be evaluated).
   */
  readonly comparedWith: 'nothing' | 'applied' | 'partly-applied' | 'unreadable';
  readonly applied: readonly AppliedEntry[];
  /** Datacenters whose record could not be read, assumed never applied (`--assume-unapplied`). */
  readonly assumedUnapplied: readonly string[];
  readonly changes: readonly MeshChange[];
  /** What this synthesis did to the mesh's CA material in the store (issued, renewed, rotation notes). */
  readonly certificates: readonly string[];
  readonly gates: readonly Gate[];
  /** The SVG picture, relative to the project. */
  readonly picture: string;
}

/** The whole plan, as `--json` prints it. */
export interface PlanDocument {
  readonly format: number;
  /** This plan run: its saved plans are in `.meshform-cache/runs/<id>/`. */
  readonly run: string;
  readonly mode: 'online' | 'offline';
  /** The assumptions the plan rests on, stated by the user (`--assume-unapplied`). */
  readonly assumptions: readonly string[];
  readonly terraform: {
    readonly available: boolean;
    readonly version?: string;
    readonly reason?: string;
    /** The local provider mirror (offline). */
    readonly mirror?: string;
  };
  readonly meshes: readonly MeshPlan[];
  readonly stacks: readonly StackPlan[];
  /**
   * The stacks `--stack` selected: only they were planned with Terraform (the others are `skipped`, not
   * selected), so the plan is partial and exits 1. Absent when every stack was considered.
   */
  readonly selectedStacks?: readonly string[];
  /** Something changes (a mesh change, certificates issued, a stack's plan, a stack waiting or to destroy). */
  readonly changes: boolean;
  readonly exitCode: number;
}

/** Reports progress of long steps. */
export interface Progress {
  step(message: string): void;
  done(): void;
}

/** Options of a plan. */
export interface PlanOptions {
  readonly projectDir: string;
  readonly store: SecretStore;
  /** Plan with fake credentials and the local provider mirror, against the local state only. */
  readonly offline: boolean;
  /** Terraform plans at a time. */
  readonly parallelism: number;
  /** Acknowledged gate ids. */
  readonly allow: ReadonlySet<string>;
  /** Skip Terraform entirely (mesh-level plan and gates only). */
  readonly terraform: boolean;
  /** Assume a datacenter whose applied record cannot be read never applied (and say so), instead of failing. */
  readonly assumeUnapplied?: boolean;
  /** Exit 2 when something changes (like `terraform plan -detailed-exitcode`). */
  readonly detailedExitCode?: boolean;
  readonly progress?: Progress;
  /** Catches interruptions (a deploy passes its own); one is made for the plan when absent. */
  readonly guard?: RunGuard;
  /** Terraform Cloud's API base URL for a host (default `https://<host>`, or MESHFORM_TFC_API_URL). */
  readonly terraformCloudBaseUrl?: (hostname: string) => string;
  /**
   * How stacks whose workspace runs in Terraform Cloud are planned there: speculative plans (default), or
   * saved plan runs that can be confirmed in Terraform Cloud.
   */
  readonly remotePlans?: RemotePlanMode;
  /** First wait between two reads of a Terraform Cloud run's status, in milliseconds (default 1000). */
  readonly terraformCloudPollMs?: number;
  /**
   * Plan only these stacks with Terraform (`--stack`, of the app or that left it); the others are reported
   * as not selected and the plan exits 1 (incomplete). The mesh-level change and the gates that compare with
   * what was applied still read every datacenter's record.
   */
  readonly stacks?: readonly string[];
  /** A first root may be created unattended when there is no passphrase and no terminal (`--unattended-root`). */
  readonly unattendedRoot?: boolean;
}

/** The reason of a stack `--stack` did not select. */
export const NOT_SELECTED = 'not selected (--stack)';

/** The reason of a stack an offline plan cannot plan because there is no provider mirror at all. */
export const NO_MIRROR = 'offline: no provider mirror';

interface StackInfo {
  readonly name: string;
  /** Where Terraform runs for it: its synthesized directory, or the kept copy of what was applied (removed). */
  readonly dir: string;
  readonly json: StackBackendJson & {
    provider?: { [name: string]: unknown };
    output?: { [name: string]: unknown };
    variable?: { [name: string]: { default?: unknown } };
  };
  readonly dependsOn: readonly string[];
  readonly mesh?: string;
  readonly datacenter?: string;
  /** It left the app: the plan destroys it. */
  readonly destroy?: boolean;
}

/** The stacks in an order where every stack comes after the ones it depends on (ties by name). */
export function dependencyOrder(
  stacks: readonly { readonly stack: string; readonly dependsOn: readonly string[] }[],
): string[] {
  const order: string[] = [];
  const remaining = new Map(
    stacks.map((s) => [s.stack, new Set(s.dependsOn.filter((d) => stacks.some((o) => o.stack === d)))]),
  );
  while (remaining.size > 0) {
    const ready = [...remaining]
      .filter(([, deps]) => [...deps].every((d) => order.includes(d)))
      .map(([s]) => s)
      .sort();
    if (ready.length === 0)
      throw new CliError(`the stacks depend on each other in a cycle: ${[...remaining.keys()].join(', ')}`);
    for (const s of ready) {
      order.push(s);
      remaining.delete(s);
    }
  }
  return order;
}

/** SHA-256 of a file, hex. */
export function fileSha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** One plan run: its id and the directory of its saved plans. */
export interface PlanRun {
  readonly id: string;
  readonly dir: string;
}

/** How many plan runs are kept (older ones, and their saved plans, are removed). */
const KEPT_RUNS = 10;

/** Starts a plan run: `.meshform-cache/runs/<UTC time>-<random>/`, private; the oldest runs beyond ten go. */
export function startPlanRun(cache: string): PlanRun {
  const root = path.join(cache, 'runs');
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const id = `${new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
  const dir = path.join(root, id);
  fs.mkdirSync(path.join(dir, 'plans'), { recursive: true, mode: 0o700 });
  const runs = fs.readdirSync(root).sort();
  for (const old of runs.slice(0, Math.max(0, runs.length - KEPT_RUNS)))
    if (old !== id) fs.rmSync(path.join(root, old), { recursive: true, force: true });
  return { id, dir };
}

/** Where deploy keeps the configuration it applied to a stack: what destroys it once it left the app. */
export function appliedConfigurationDir(cache: string, stack: string): string {
  return path.join(cache, 'applied', stack);
}

/** What deploy records beside an applied configuration. */
interface AppliedConfigurationMeta {
  readonly mesh?: string;
  readonly datacenter?: string;
  readonly dependsOn: readonly string[];
}

/**
 * Keeps a copy of the configuration just applied to a stack (its Terraform JSON, with a local state path made
 * absolute, and its provider lock file), so the stack can be destroyed after it left the app.
 */
export function keepAppliedConfiguration(cache: string, stackDir: string, plan: StackPlan): void {
  const dir = appliedConfigurationDir(cache, plan.stack);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const json = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8')) as {
    terraform?: { backend?: { local?: { path?: string } } };
  };
  const local = json.terraform?.backend?.local;
  if (local) local.path = path.resolve(stackDir, local.path ?? 'terraform.tfstate');
  fs.writeFileSync(path.join(dir, 'cdk.tf.json'), JSON.stringify(json, null, 2), { mode: 0o600 });
  const lockFile = path.join(stackDir, '.terraform.lock.hcl');
  if (fs.existsSync(lockFile)) fs.copyFileSync(lockFile, path.join(dir, '.terraform.lock.hcl'));
  const meta: AppliedConfigurationMeta = {
    ...(plan.mesh ? { mesh: plan.mesh } : {}),
    ...(plan.datacenter ? { datacenter: plan.datacenter } : {}),
    dependsOn: plan.dependsOn,
  };
  fs.writeFileSync(path.join(dir, 'meshform.json'), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
}

function stacksOf(synthesis: MeshSynthesis): StackInfo[] {
  const outdir = synthesis.result.outdir;
  return Object.entries(synthesis.result.dependencies).map(([name, dependsOn]) => {
    const dir = path.join(outdir, 'stacks', name);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.tf.json'), 'utf8')) as StackInfo['json'];
    const mesh = synthesis.result.meshes.find((m) => m.datacenters.some((d) => d.stacks.some((s) => s.name === name)));
    const datacenter = mesh?.datacenters.find((d) => d.stacks.some((s) => s.name === name))?.name;
    return { name, dir, json, dependsOn, ...(mesh ? { mesh: mesh.mesh } : {}), ...(datacenter ? { datacenter } : {}) };
  });
}

/** How many resources a stack declares (how long its plan takes, roughly). */
function resourceCount(stack: StackInfo): number {
  const resources = (stack.json as { resource?: { [type: string]: object } }).resource ?? {};
  return Object.values(resources).reduce((n, byName) => n + Object.keys(byName).length, 0);
}

/** What names a stack in the plan: its name, what it depends on, its mesh and datacenter, whether it goes. */
function stackIdentity(stack: StackInfo): Pick<StackPlan, 'stack' | 'dependsOn' | 'mesh' | 'datacenter' | 'destroy'> {
  return {
    stack: stack.name,
    dependsOn: stack.dependsOn,
    ...(stack.mesh ? { mesh: stack.mesh } : {}),
    ...(stack.datacenter ? { datacenter: stack.datacenter } : {}),
    ...(stack.destroy ? { destroy: true } : {}),
  };
}

/** What the plan's stacks run with, shared by every stack plan. */
interface PlanContext {
  readonly options: PlanOptions;
  readonly env: TerraformEnvironment;
  readonly cache: string;
  readonly run: PlanRun;
  readonly initLock: Lock;
}

/** Plans one stack with real Terraform (a destroy plan for a stack that left the app); never throws. */
async function planStack(
  stack: StackInfo,
  context: PlanContext,
  environment: { [name: string]: string },
): Promise<StackPlan> {
  const { options, env, cache, run } = context;
  const base = stackIdentity(stack);
  const localState = stack.json.terraform?.backend?.local?.path;
  const workspace = new StackWorkspace(
    stack.dir,
    env,
    {
      offline: options.offline,
      pluginCache: process.env.TF_PLUGIN_CACHE_DIR ?? path.join(cache, 'plugins'),
      environment,
      ...(options.offline && localState ? { initialState: path.resolve(stack.dir, localState) } : {}),
      keepInit: true,
    },
    options.offline ? path.join(cache, 'offline') : undefined,
  );
  // A saved plan holds every variable's value, secrets included: it is kept in the private cache (this run's
  // directory), never under the synth output.
  const planFile = options.offline ? 'meshform.tfplan' : path.join(run.dir, 'plans', `${stack.name}.tfplan`);
  const failed = (step: string, output: string): StackPlan => ({
    ...base,
    status: 'failed',
    reason: `terraform ${step} failed: ${terraformError(output)}`,
    error: terraformDiagnostics(output),
  });
  const init = async () => {
    options.progress?.step(`${stack.name}: terraform init`);
    const result = await context.initLock.run(() => workspace.run(['init', '-input=false', '-no-color']));
    if (result.code === 0) workspace.initDone();
    return result;
  };
  const terraformPlan = () => {
    options.progress?.step(`${stack.name}: terraform plan${stack.destroy ? ' -destroy' : ''}`);
    return workspace.run([
      'plan',
      '-input=false',
      '-no-color',
      '-lock=false',
      `-out=${planFile}`,
      ...(stack.destroy ? ['-destroy'] : []),
      ...(options.offline ? ['-refresh=false'] : []),
    ]);
  };
  // an offline copy kept from the last run is already initialized for exactly this configuration (initKey)
  if (!workspace.initialized) {
    const first = await init();
    if (first.code !== 0) return failed('init', first.stderr || first.stdout);
  }
  let plan = await terraformPlan();
  if (plan.code !== 0 && workspace.initialized && /terraform init/.test(plan.stderr)) {
    // what the kept init installed is not what the plan needs after all (Terraform says to run init): once more
    workspace.forgetInit();
    const again = await init();
    if (again.code !== 0) return failed('init', again.stderr || again.stdout);
    plan = await terraformPlan();
  }
  if (plan.code !== 0) return failed('plan', plan.stderr || plan.stdout);
  const saved = path.resolve(workspace.dir, planFile);
  fs.chmodSync(saved, 0o600);
  // the plan file read directly; `terraform show -json` (which loads every provider's schema again) only for a
  // plan file in a format not decoded here
  let planJson = readPlanFile(fs.readFileSync(saved));
  if (!planJson) {
    const show = await workspace.run(['show', '-json', planFile]);
    if (show.code !== 0) return failed('show', show.stderr);
    planJson = JSON.parse(show.stdout) as PlanJson;
  }
  const summary = summarizeTerraformPlan(planJson, stack.json as never);
  return {
    ...base,
    status: 'planned',
    summary,
    ...(options.offline ? {} : { planFile: path.relative(options.projectDir, saved), planSha256: fileSha256(saved) }),
  };
}

/**
 * Plans a stack whose state is in Terraform Cloud through its API, and summarizes the plan JSON it reads back
 * as a local plan's; when the workspace runs locally (execution mode local), with terraform here (`local`).
 * A refusal of the API (401, 403, 404) or no token: the stack fails to plan, with why (never "nothing applied").
 */
async function planCloudStack(
  stack: StackInfo,
  options: PlanOptions,
  guard: RunGuard,
  local: () => Promise<StackPlan>,
): Promise<StackPlan> {
  const base = stackIdentity(stack);
  const cloud = stack.json.terraform!.cloud!;
  const hostname = cloud.hostname ?? 'app.terraform.io';
  const target = { hostname, organization: cloud.organization ?? '', workspace: cloud.workspaces?.name ?? '' };
  const cannotTell = (why: string): StackPlan => ({
    ...base,
    status: 'failed',
    reason: `what Terraform Cloud would change cannot be told: ${why}`,
  });
  const token = terraformCloudToken(hostname);
  if (!token) return cannotTell(`no token for ${hostname} (${tokenVariable(hostname)}, TFE_TOKEN or terraform login)`);
  let baseUrl: string;
  try {
    baseUrl = options.terraformCloudBaseUrl?.(hostname) ?? terraformCloudBaseUrl(hostname);
  } catch (e) {
    return cannotTell((e as Error).message);
  }
  const mode = options.remotePlans ?? 'speculative';
  options.progress?.step(`${stack.name}: plan in Terraform Cloud (${target.organization}/${target.workspace})`);
  const outcome = await planInTerraformCloud({
    stackDir: stack.dir,
    target,
    baseUrl,
    token,
    mode,
    ...(stack.destroy ? { destroy: true } : {}),
    message: `meshform plan${stack.destroy ? ' -destroy' : ''} of ${stack.name}`,
    ...(options.terraformCloudPollMs ? { pollMs: options.terraformCloudPollMs } : {}),
    signal: guard.abort.signal,
    progress: (message) => options.progress?.step(`${stack.name}: ${message}`),
  });
  switch (outcome.kind) {
    case 'local':
      return local();
    case 'cannot-tell':
      return cannotTell(outcome.reason);
    case 'failed':
      return { ...base, status: 'failed', reason: `the plan in Terraform Cloud failed: ${outcome.reason}` };
    case 'planned':
      return {
        ...base,
        status: 'planned',
        summary: summarizeTerraformPlan(outcome.plan as never, stack.json as never),
        remote: { run: outcome.run, url: outcome.url, mode },
      };
  }
}

/** Where a planned stack deploys new TLS material to a datacenter that has some (its secret resources update). */
function tlsMaterialChanges(mesh: MeshManifest, plans: readonly StackPlan[]): MeshChange[] {
  const changes: MeshChange[] = [];
  for (const plan of plans) {
    if (plan.mesh !== mesh.mesh || !plan.summary || !plan.datacenter || plan.destroy) continue;
    const updated = plan.summary.resources.filter(
      (r) =>
        (r.action === 'update' || r.action === 'replace') &&
        ((r.type === 'kubernetes_secret_v1' && /\/(CaBundle|ServerCert)$/.test(r.constructPath ?? '')) ||
          (r.type === 'aws_secretsmanager_secret_version' && r.constructPath !== undefined)),
    );
    if (updated.length > 0) {
      changes.push({
        kind: 'ca',
        action: 'update',
        subject: `TLS material of ${plan.datacenter}`,
        datacenter: plan.datacenter,
        summary: `TLS material of ${plan.datacenter} is replaced (${updated.map((r) => r.address).join(', ')}): new trusted roots or server certificate`,
      });
    }
  }
  return changes;
}

/** The registry sources (`hashicorp/aws`) of the providers a stack configures or requires. */
function providerSources(json: StackInfo['json']): string[] {
  const required = Object.entries(
    (json.terraform as { required_providers?: { [name: string]: { source?: string } } } | undefined)
      ?.required_providers ?? {},
  ).map(([name, r]) => r.source ?? name);
  const sources = [...stackProviders(json), ...required].map((source) => {
    const parts = source.replace(/^registry\.terraform\.io\//, '').split('/');
    return parts.length === 1 ? `hashicorp/${parts[0]}` : parts.join('/');
  });
  return [...new Set(sources)].sort();
}

/** Why a stack is not planned here (`skipped`, `remote` or `failed`), or undefined when it can be planned. */
function unplannable(
  stack: StackInfo,
  options: PlanOptions,
  env: TerraformEnvironment | undefined,
  unavailable: string,
): Pick<StackPlan, 'status' | 'reason'> | undefined {
  if (options.stacks && !options.stacks.includes(stack.name)) return { status: 'skipped', reason: NOT_SELECTED };
  if (!options.terraform) return { status: 'skipped', reason: 'Terraform skipped (--no-terraform)' };
  // planned through Terraform Cloud's API (or here, when its workspace runs locally: planCloudStack says)
  if (stack.json.terraform?.cloud && !options.offline) return undefined;
  if (!env) return { status: 'failed', reason: `Terraform ${unavailable}` };
  if (options.offline && !env.mirror && providerSources(stack.json).length > 0) {
    // said once for the whole plan (how to make a mirror), not once per stack
    return { status: 'skipped', reason: NO_MIRROR };
  }
  if (options.offline) {
    const missing = providerSources(stack.json).filter(
      (source) => !env.mirror || !fs.existsSync(path.join(env.mirror, 'registry.terraform.io', source)),
    );
    if (missing.length > 0)
      return {
        status: 'skipped',
        reason: `offline: provider ${missing.join(', ')} is not in the local provider mirror`,
      };
  }
  return undefined;
}

/** Plans the project: synthesis, Terraform plans, mesh-level diff against what was applied, gates, pictures. */
export async function planProject(options: PlanOptions): Promise<PlanDocument> {
  return (await planWithSynthesis(options)).plan;
}

/** A plan with what it was made from, which `meshform deploy` applies without working it out again. */
export interface PlanWithSynthesis {
  readonly plan: PlanDocument;
  /** The synthesis planned. */
  readonly synthesis: MeshSynthesis;
  /** The plan run (its directory holds the saved plans). */
  readonly run: PlanRun;
  /** The Terraform the plans ran with (absent when Terraform was not available or skipped). */
  readonly terraform?: TerraformEnvironment;
  /** For each stack: where Terraform runs for it and the environment (secret variables) it needs. */
  readonly stackRuns: ReadonlyMap<string, { readonly dir: string; readonly environment: { [name: string]: string } }>;
}

/** The plan and the synthesis it was made from (what `meshform deploy` applies). Holds the project's lock. */
export async function planWithSynthesis(options: PlanOptions): Promise<PlanWithSynthesis> {
  return withProjectLockAsync(options.projectDir, 'plan', async () => {
    const guard = options.guard ?? new RunGuard();
    try {
      return await planLocked(options, guard);
    } finally {
      if (!options.guard) guard.stop();
    }
  });
}

/** The Terraform the plan runs with: offline, the local provider mirror when there is one. */
function terraformFor(options: PlanOptions): { env?: TerraformEnvironment; reason?: string } {
  if (!options.terraform) return { reason: 'skipped (--no-terraform)' };
  const online = terraformAvailability({ offline: false });
  if (!online.ok) return { reason: online.reason };
  if (!options.offline) return { env: online.env };
  const mirror = findProviderMirror() ?? configuredProviderMirror();
  return { env: { ...online.env, ...(mirror ? { mirror } : {}) } };
}

/** MESHFORM_TF_PROVIDER_MIRROR when it is a provider mirror of any provider (findProviderMirror wants AWS's). */
function configuredProviderMirror(): string | undefined {
  const configured = process.env.MESHFORM_TF_PROVIDER_MIRROR;
  return configured && fs.existsSync(path.join(configured, 'registry.terraform.io')) ? configured : undefined;
}

/** A stack that left the app, found through an applied record's peers or a configuration deploy kept. */
interface RemovedStack {
  readonly name: string;
  readonly mesh?: string;
  readonly datacenter?: string;
  readonly dependsOn: readonly string[];
  readonly location?: StateLocation;
}

/** Stacks that left the app: named by an applied record's peers or by a configuration deploy kept. */
function removedStacks(
  records: readonly AppliedRecord[],
  current: ReadonlySet<string>,
  cache: string,
): Map<string, RemovedStack> {
  const removed = new Map<string, RemovedStack>();
  for (const record of records) {
    for (const peer of record.peers ?? []) {
      peer.stacks.forEach((st, i) => {
        if (current.has(st.name) || removed.has(st.name)) return;
        removed.set(st.name, {
          name: st.name,
          mesh: record.mesh,
          datacenter: peer.datacenter,
          // a datacenter's stacks deploy in order: each after the ones before it
          dependsOn: peer.stacks.slice(0, i).map((p) => p.name),
          location: st.location,
        });
      });
    }
  }
  const kept = path.join(cache, 'applied');
  for (const name of fs.existsSync(kept) ? fs.readdirSync(kept).sort() : []) {
    if (current.has(name) || removed.has(name)) continue;
    let meta: AppliedConfigurationMeta;
    try {
      meta = JSON.parse(fs.readFileSync(path.join(kept, name, 'meshform.json'), 'utf8')) as AppliedConfigurationMeta;
    } catch {
      meta = { dependsOn: [] };
    }
    removed.set(name, { name, ...meta });
  }
  return removed;
}

/**
 * The secret variables of datacenters that left the app, from the store, as their records describe them (a
 * destroy plan needs its variables). Where the store no longer has them, none: Terraform says what it misses.
 */
function removedDatacenterSecrets(store: SecretStore, manifests: readonly MeshManifest[]): { [v: string]: string } {
  try {
    return secretVariables(store, manifests);
  } catch {
    return {};
  }
}

/** What every step of one plan shares. */
interface PlanSteps {
  readonly options: PlanOptions;
  readonly synthesis: MeshSynthesis;
  readonly cache: string;
  readonly reading: StateReading;
  /** The assumptions stated so far (`--assume-unapplied`). */
  readonly assumptions: string[];
}

/** What each datacenter applied: the record of its control-plane stack, by stack name. */
async function readCurrentRecords(
  steps: PlanSteps,
  stacks: readonly StackInfo[],
  plans: readonly StackPlan[],
): Promise<Map<string, { lookup: AppliedLookup; entry: AppliedEntry }>> {
  // an offline plan read the stack's own state only when that state is a local file
  const authoritative = (stack: StackInfo) =>
    !steps.options.offline || stack.json.terraform?.backend?.local !== undefined;
  const lookups = new Map<string, { lookup: AppliedLookup; entry: AppliedEntry }>();
  for (const mesh of steps.synthesis.result.meshes) {
    for (const dc of mesh.datacenters) {
      const stack = stacks.find(
        (s) => s.datacenter === dc.name && s.mesh === mesh.mesh && s.json.output?.[APPLIED_OUTPUT] !== undefined,
      );
      if (!stack) continue;
      const planned = plans.find((p) => p.stack === stack.name && p.status === 'planned')?.summary;
      const lookup = await readAppliedRecord(
        stack.name,
        stack.dir,
        stack.json,
        planned && authoritative(stack) ? planned : undefined,
        steps.reading,
      );
      lookups.set(stack.name, {
        lookup,
        entry: { stack: stack.name, datacenter: dc.name, source: lookup.source, detail: lookup.detail },
      });
    }
  }
  return lookups;
}

/** The stacks that left the app: their lookups, those to destroy, those that cannot be planned. */
interface LeftStacks {
  readonly lookups: Map<string, AppliedLookup>;
  readonly toDestroy: StackInfo[];
  readonly notPlannable: StackPlan[];
}

/**
 * Finds the stacks that left the app (named by the records read, including the records of datacenters that
 * left, or by a configuration deploy kept) and reads their state: destroyed ones are gone; the others are to
 * destroy, from the configuration deploy kept, or cannot be planned here.
 */
async function findLeftStacks(
  steps: PlanSteps,
  current: ReadonlySet<string>,
  records: readonly AppliedRecord[],
): Promise<LeftStacks> {
  const left: LeftStacks = { lookups: new Map(), toDestroy: [], notPlannable: [] };
  const { options } = steps;
  for (;;) {
    const known = [...records, ...[...left.lookups.values()].flatMap((l) => (l.record ? [l.record] : []))];
    const next = [...removedStacks(known, current, steps.cache).values()].filter((r) => !left.lookups.has(r.name));
    if (next.length === 0) return left;
    for (const gone of next) {
      const kept = appliedConfigurationDir(steps.cache, gone.name);
      const keptJson = fs.existsSync(path.join(kept, 'cdk.tf.json'))
        ? (JSON.parse(fs.readFileSync(path.join(kept, 'cdk.tf.json'), 'utf8')) as StackInfo['json'])
        : undefined;
      const lookup = await readAppliedRecord(
        gone.name,
        path.join(steps.synthesis.result.outdir, 'stacks', gone.name),
        keptJson ?? { terraform: gone.location ?? {} },
        undefined,
        steps.reading,
      );
      left.lookups.set(gone.name, lookup);
      const info: StackInfo = {
        name: gone.name,
        dir: kept,
        json: keptJson ?? {},
        dependsOn: gone.dependsOn,
        ...(gone.mesh ? { mesh: gone.mesh } : {}),
        ...(gone.datacenter ? { datacenter: gone.datacenter } : {}),
        destroy: true,
      };
      if (lookup.source === 'none') continue; // destroyed: gone from the plan
      const notPlannable = (reason: string) =>
        left.notPlannable.push({ ...stackIdentity(info), status: 'failed', reason });
      if (lookup.source === 'unavailable') {
        if (options.assumeUnapplied)
          steps.assumptions.push(
            `stack ${gone.name} (left the app) is assumed destroyed (--assume-unapplied): ${lookup.detail}`,
          );
        else
          notPlannable(
            `it left the app, and whether its state still holds what it applied is unknown: ${lookup.detail}`,
          );
      } else if (!keptJson && options.terraform) {
        notPlannable(
          `it left the app, but its state still holds ${lookup.resources ?? 0} resource(s) and meshform kept no copy of the configuration that applied it (it was applied by another tool or on another machine). ` +
            `Destroy it with the synthesis that applied it (check out that revision, then cdktf destroy ${gone.name})`,
        );
      } else left.toDestroy.push(info);
    }
  }
}

/** One mesh's plan: its records merged into what was applied, the change, the gates, the picture. */
function planMesh(
  steps: PlanSteps,
  mesh: MeshManifest,
  current: ReadonlyMap<string, { lookup: AppliedLookup; entry: AppliedEntry }>,
  left: ReadonlyMap<string, AppliedLookup>,
  plans: readonly StackPlan[],
): MeshPlan {
  const { options } = steps;
  const entries: AppliedEntry[] = [];
  const records: AppliedRecord[] = [];
  const unreadable: UnreadableRecord[] = [];
  const assumed: string[] = [];
  const take = (lookup: AppliedLookup, entry: AppliedEntry) => {
    entries.push(entry);
    if (lookup.record) records.push(lookup.record);
    else if (lookup.source !== 'unavailable') return;
    else if (options.assumeUnapplied) {
      assumed.push(entry.datacenter);
      steps.assumptions.push(
        `datacenter ${entry.datacenter} of mesh ${mesh.mesh} is assumed never applied (--assume-unapplied): ${lookup.detail}`,
      );
    } else unreadable.push({ datacenter: entry.datacenter, stack: entry.stack, detail: lookup.detail });
  };
  for (const { lookup, entry } of current.values())
    if (mesh.datacenters.some((d) => d.name === entry.datacenter && d.stacks.some((st) => st.name === entry.stack)))
      take(lookup, entry);
  for (const [name, lookup] of left) {
    if (lookup.record?.mesh !== mesh.mesh) continue;
    take(lookup, {
      stack: name,
      datacenter: lookup.record.datacenter,
      source: lookup.source,
      detail: `${lookup.detail} (no longer in the app)`,
      removed: true,
    });
  }
  const before = mergeAppliedRecords(records);
  const unknown = new Set(unreadable.map((u) => u.datacenter));
  // against an unknown baseline "everything is new" would be a guess: only what the readable records support
  const changes =
    unknown.size > 0 && records.length === 0
      ? []
      : [...diffMesh(before, mesh), ...tlsMaterialChanges(mesh, plans)].filter(
          (c) => c.datacenter === undefined || !unknown.has(c.datacenter),
        );
  const meshStacks = plans
    .filter((p) => p.mesh === mesh.mesh && p.summary)
    .map((p) => ({
      stack: p.stack,
      resources: p.summary!.resources,
      ...(p.destroy ? { leaves: { ...(p.datacenter ? { datacenter: p.datacenter } : {}) } } : {}),
    }));
  const gates = [
    ...evaluateGates(before, mesh, changes, meshStacks, options.allow, records),
    ...unevaluableGates(mesh.mesh, unreadable),
  ];
  const pictureDir = path.join(steps.synthesis.result.outdir, MESH_MANIFEST_DIR, 'plan');
  fs.mkdirSync(pictureDir, { recursive: true });
  const picture = path.join(pictureDir, `${mesh.mesh}.svg`);
  fs.writeFileSync(picture, renderPlanSvg(mesh, before, changes));
  const currentRecords = records.filter((r) => mesh.datacenters.some((d) => d.name === r.datacenter)).length;
  return {
    mesh: mesh.mesh,
    comparedWith:
      unreadable.length > 0
        ? 'unreadable'
        : records.length === 0
          ? 'nothing'
          : currentRecords < entries.filter((e) => !e.removed).length
            ? 'partly-applied'
            : 'applied',
    applied: entries,
    assumedUnapplied: assumed,
    changes,
    certificates: (steps.synthesis.stores.find((st) => st.mesh === mesh.mesh)?.certificates ?? []).map((l) =>
      l.replace(/\u001b\[[0-9;]*m/g, ''),
    ),
    gates,
    picture: path.relative(options.projectDir, picture),
  };
}

/** The exit code (see PLAN_EXIT) and whether anything changes. */
function outcome(
  options: PlanOptions,
  meshes: readonly MeshPlan[],
  plans: readonly StackPlan[],
): { exitCode: number; changes: boolean } {
  // a partial plan (--stack) is never taken for a whole one: the stacks it did not select were not checked
  const incomplete =
    plans.some((p) => p.status === 'failed' || p.reason === NOT_SELECTED) ||
    meshes.some((m) => m.gates.some((g) => g.status === 'cannot-evaluate'));
  const gated = meshes.some((m) => m.gates.some((g) => g.status === 'fired' && !g.acknowledged));
  const changes =
    meshes.some((m) => m.changes.length > 0 || m.certificates.some((c) => c.startsWith('issued '))) ||
    plans.some((p) => p.status === 'waiting' || p.destroy || (p.summary !== undefined && !isEmptyPlan(p.summary)));
  const exitCode = incomplete
    ? PLAN_EXIT.error
    : gated
      ? PLAN_EXIT.gated
      : changes && options.detailedExitCode
        ? PLAN_EXIT.changes
        : PLAN_EXIT.ok;
  return { exitCode, changes };
}

async function planLocked(options: PlanOptions, guard: RunGuard): Promise<PlanWithSynthesis> {
  const synthesis = synthesizeMeshes(options.projectDir, options.store, {
    ...(options.unattendedRoot ? { unattendedRoot: true } : {}),
    ...(options.progress ? { progress: options.progress } : {}),
  });
  guard.check('after synthesis; nothing was planned');
  const cache = cacheDirectory(options.projectDir);
  const run = startPlanRun(cache);
  const { env, reason: unavailable } = terraformFor(options);
  const stacks = stacksOf(synthesis);
  // The secret variables are read for the stacks Terraform plans here. A stack in a Terraform Cloud workspace
  // gets them from its workspace (`meshform secrets push`): a pipeline that cannot read them (a variable set's
  // sensitive variable) still plans it there.
  let secrets: { [variable: string]: string } | undefined;
  const secretsHere = () => (secrets ??= secretVariables(options.store, synthesis.result.meshes));
  const steps: PlanSteps = {
    options,
    synthesis,
    cache,
    assumptions: [],
    reading: {
      offline: options.offline,
      ...(env && !options.offline ? { terraform: env } : {}),
      workDir: path.join(run.dir, 'state'),
      ...(options.terraformCloudBaseUrl ? { terraformCloudBaseUrl: options.terraformCloudBaseUrl } : {}),
    },
  };
  const context: PlanContext | undefined = env ? { options, env, cache, run, initLock: new Lock() } : undefined;
  const stackRuns = new Map<string, { dir: string; environment: { [name: string]: string } }>();

  /** Plans the stacks (in parallel, bounded); an interruption stops starting new ones. */
  const planAll = async (list: readonly StackInfo[], extraSecrets: { [v: string]: string } = {}) => {
    let finished = 0;
    const planning = new Set<string>();
    return pool(
      list.map((stack) => async (): Promise<StackPlan> => {
        const inCloud = stack.json.terraform?.cloud !== undefined && !options.offline;
        const environmentHere = () => variableEnvironment(stack.json, { ...secretsHere(), ...extraSecrets });
        stackRuns.set(stack.name, { dir: stack.dir, environment: inCloud ? {} : environmentHere() });
        const reason = guard.interrupted
          ? { status: 'failed' as const, reason: `not planned: ${guard.interrupted.reason}` }
          : unplannable(stack, options, env, unavailable ?? '');
        const local = () => {
          if (!context)
            return Promise.resolve({
              ...stackIdentity(stack),
              status: 'failed' as const,
              reason: `Terraform ${unavailable}`,
            });
          // a workspace that runs locally (execution mode local) is planned here, with the secrets
          const environment = inCloud ? environmentHere() : stackRuns.get(stack.name)!.environment;
          stackRuns.set(stack.name, { dir: stack.dir, environment });
          return planStack(stack, context, environment);
        };
        if (!reason) planning.add(stack.name);
        const result: StackPlan = reason
          ? { ...stackIdentity(stack), ...reason }
          : inCloud
            ? await planCloudStack(stack, options, guard, local)
            : await local();
        planning.delete(stack.name);
        finished++;
        // what is still running, so that a terminal's one progress line never goes quiet on a long plan
        options.progress?.step(
          `planned ${finished}/${list.length} stacks${planning.size > 0 ? `; still planning ${[...planning].join(', ')}` : ''}`,
        );
        return result;
      }),
      options.parallelism,
      // the biggest plans first: with fewer workers than stacks, the last one to start is a small one
      list
        .map((stack, i) => ({ i, size: resourceCount(stack) }))
        .sort((a, b) => b.size - a.size || a.i - b.i)
        .map((s) => s.i),
    );
  };

  const results = await planAll(stacks);
  // A stack whose plan failed while something it depends on was never applied is waiting for it, not broken;
  // when that upstream was not selected (--stack), whether it was applied is not known: it stays failed.
  const plans: StackPlan[] = results.map((r) => {
    if (r.status !== 'failed' || !r.reason?.startsWith('terraform plan failed')) return r;
    const upstream = (dep: string) => results.find((u) => u.stack === dep);
    const unselected = r.dependsOn.filter((dep) => upstream(dep)?.reason === NOT_SELECTED);
    if (unselected.length > 0)
      return {
        ...r,
        reason: `${r.reason} (its upstream ${unselected.join(', ')} was not planned: select it too, --stack ${unselected.join(' --stack ')})`,
      };
    const pending = r.dependsOn.filter((dep) => !upstream(dep)?.summary?.applied);
    return pending.length > 0
      ? { ...r, status: 'waiting' as const, reason: `upstream ${pending.join(', ')} not yet applied: ${r.reason}` }
      : r;
  });
  const current = await readCurrentRecords(steps, stacks, plans);
  const left = await findLeftStacks(
    steps,
    new Set(stacks.map((s) => s.name)),
    [...current.values()].flatMap(({ lookup }) => (lookup.record ? [lookup.record] : [])),
  );
  guard.check('while reading what was applied; nothing was planned');
  // a removed datacenter's secret variables: from the store, for the datacenter as its record describes it
  const removedSecrets = removedDatacenterSecrets(
    options.store,
    [...left.lookups.values()].flatMap((l) => (l.record ? [l.record.manifest] : [])),
  );
  plans.push(
    ...(await planAll(left.toDestroy, removedSecrets)),
    ...left.notPlannable.map((p) =>
      options.stacks && !options.stacks.includes(p.stack)
        ? { ...p, status: 'skipped' as const, reason: NOT_SELECTED }
        : p,
    ),
  );
  guard.check('while planning; the plans made so far are not applied');
  const unknown = (options.stacks ?? []).filter((name) => !plans.some((p) => p.stack === name));
  if (unknown.length > 0) {
    throw new CliError(
      `--stack ${unknown.join(', ')}: no such stack in the app${left.lookups.size > 0 ? ' or among those that left it' : ''} (stacks: ${plans.map((p) => p.stack).join(', ')})`,
      2,
    );
  }

  const meshes = synthesis.result.meshes.map((mesh) => planMesh(steps, mesh, current, left.lookups, plans));
  options.progress?.done();
  const { exitCode, changes } = outcome(options, meshes, plans);
  const plan: PlanDocument = {
    format: PLAN_FORMAT,
    run: run.id,
    mode: options.offline ? 'offline' : 'online',
    assumptions: steps.assumptions,
    terraform: env
      ? { available: true, version: env.version, ...(env.mirror ? { mirror: env.mirror } : {}) }
      : { available: false, ...(unavailable ? { reason: unavailable } : {}) },
    meshes,
    stacks: dependencyOrder(plans).map((name) => plans.find((p) => p.stack === name)!),
    ...(options.stacks ? { selectedStacks: options.stacks } : {}),
    changes,
    exitCode,
  };
  fs.writeFileSync(path.join(run.dir, 'plan.json'), `${JSON.stringify(plan, null, 2)}\n`, { mode: 0o600 });
  return { plan, synthesis, run, ...(env ? { terraform: env } : {}), stackRuns };
}
