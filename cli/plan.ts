/**
 * `meshform plan`: synthesize, then show the change in mesh terms against what every datacenter last applied,
 * with a real `terraform plan` of every stack that can be planned here, risk gates, and a picture.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diffMesh, MeshChange } from '../constructs/private/mesh-diff';
import {
  APPLIED_OUTPUT,
  APPLIED_RECORD_FORMAT,
  MESH_MANIFEST_DIR,
  MeshManifest,
  mergeAppliedRecords,
  scopeManifest,
  type AppliedRecord,
} from '../constructs/private/mesh-manifest';
import { SecretStore } from '../constructs/secret-store';
import { AppliedLookup, readAppliedRecord, StackBackendJson } from './applied';
import { lastSynthesized } from './ca';
import { CliError } from './output';
import { evaluateGates, Gate } from './gates';
import { secretVariables } from './secrets';
import { renderPlanSvg } from './plan-svg';
import { MeshSynthesis, synthesizeMeshes } from './synth-meshes';
import {
  Lock,
  variableEnvironment,
  pool,
  terraformError,
  StackWorkspace,
  stackProviders,
  terraformAvailability,
  TerraformEnvironment,
} from './terraform';
import { StackPlanSummary, summarizeTerraformPlan } from './terraform-plan';

/** Version of the plan document (`--json`); its schema is docs/plan.schema.json. */
export const PLAN_FORMAT = 1;

/** Exit codes of `meshform plan` (and the plan step of `meshform deploy`). */
export const PLAN_EXIT = { ok: 0, error: 1, gated: 3 } as const;

/** One stack's plan. */
export interface StackPlan {
  readonly stack: string;
  readonly mesh?: string;
  readonly datacenter?: string;
  readonly dependsOn: readonly string[];
  /** `planned`; `not-planned` (cannot be planned here: the reason says why); `failed` (terraform failed). */
  readonly status: 'planned' | 'not-planned' | 'failed';
  readonly reason?: string;
  readonly summary?: StackPlanSummary;
  /** Where the saved plan is (online): what `meshform deploy` applies. */
  readonly planFile?: string;
}

/** One mesh's plan. */
export interface MeshPlan {
  readonly mesh: string;
  /** What the change is compared with. */
  readonly comparedWith: 'nothing' | 'applied' | 'partly-applied' | 'last-synthesized';
  readonly applied: readonly {
    readonly stack: string;
    readonly datacenter: string;
    readonly source: AppliedLookup['source'];
    readonly detail: string;
  }[];
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
  readonly mode: 'online' | 'offline';
  readonly terraform: { readonly available: boolean; readonly version?: string; readonly reason?: string };
  readonly meshes: readonly MeshPlan[];
  readonly stacks: readonly StackPlan[];
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
  readonly progress?: Progress;
}

/** meshform's per-project working directory (plugin cache, offline copies, deploy journal); git-ignored. */
export function cacheDirectory(projectDir: string): string {
  const dir = path.join(projectDir, '.meshform-cache');
  // saved plans and offline state copies hold secret values: private to the user
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const ignore = path.join(dir, '.gitignore');
  if (!fs.existsSync(ignore)) fs.writeFileSync(ignore, '# meshform working files: never commit\n*\n');
  return dir;
}

interface StackInfo {
  readonly name: string;
  readonly dir: string;
  readonly json: StackBackendJson & {
    provider?: { [name: string]: unknown };
    output?: { [name: string]: unknown };
    variable?: { [name: string]: { default?: unknown } };
  };
  readonly dependsOn: readonly string[];
  readonly mesh?: MeshManifest;
  readonly datacenter?: string;
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

/** Where a stack's saved plan is kept (private cache). */
export function savedPlanPath(cache: string, stack: string): string {
  const dir = path.join(cache, 'plans');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return path.join(dir, `${stack}.tfplan`);
}

function stacksOf(synthesis: MeshSynthesis): StackInfo[] {
  const outdir = synthesis.result.outdir;
  return Object.entries(synthesis.result.dependencies).map(([name, dependsOn]) => {
    const dir = path.join(outdir, 'stacks', name);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.tf.json'), 'utf8')) as StackInfo['json'];
    const mesh = synthesis.result.meshes.find((m) => m.datacenters.some((d) => d.stacks.some((s) => s.name === name)));
    const datacenter = mesh?.datacenters.find((d) => d.stacks.some((s) => s.name === name))?.name;
    return { name, dir, json, dependsOn, ...(mesh ? { mesh } : {}), ...(datacenter ? { datacenter } : {}) };
  });
}

/** What names a stack in the plan: its name, what it depends on, its mesh and datacenter. */
function stackIdentity(stack: StackInfo): Pick<StackPlan, 'stack' | 'dependsOn' | 'mesh' | 'datacenter'> {
  return {
    stack: stack.name,
    dependsOn: stack.dependsOn,
    ...(stack.mesh ? { mesh: stack.mesh.mesh } : {}),
    ...(stack.datacenter ? { datacenter: stack.datacenter } : {}),
  };
}

/** Plans one stack with real Terraform; never throws. */
async function planStack(
  stack: StackInfo,
  env: TerraformEnvironment,
  options: PlanOptions,
  cache: string,
  secrets: { [variable: string]: string },
  initLock: Lock,
): Promise<StackPlan> {
  const base = stackIdentity(stack);
  const localState = stack.json.terraform?.backend?.local?.path;
  const workspace = new StackWorkspace(
    stack.dir,
    env,
    {
      offline: options.offline,
      pluginCache: process.env.TF_PLUGIN_CACHE_DIR ?? path.join(cache, 'plugins'),
      environment: variableEnvironment(stack.json, secrets),
      ...(options.offline && localState ? { initialState: path.resolve(stack.dir, localState) } : {}),
    },
    options.offline ? path.join(cache, 'offline') : undefined,
  );
  // A saved plan holds every variable's value, secrets included: it is kept in the private cache, never under
  // the synth output.
  const planFile = options.offline ? 'meshform.tfplan' : savedPlanPath(cache, stack.name);
  options.progress?.step(`${stack.name}: terraform init`);
  const init = await initLock.run(() => workspace.run(['init', '-input=false', '-no-color']));
  if (init.code !== 0)
    // providers or the backend out of reach here: listed with the reason, not a failure of the plan
    return {
      ...base,
      status: 'not-planned',
      reason: `terraform init failed: ${terraformError(init.stderr || init.stdout)}`,
    };
  options.progress?.step(`${stack.name}: terraform plan`);
  const plan = await workspace.run([
    'plan',
    '-input=false',
    '-no-color',
    '-lock=false',
    `-out=${planFile}`,
    ...(options.offline ? ['-refresh=false'] : []),
  ]);
  if (plan.code !== 0)
    return { ...base, status: 'failed', reason: `terraform plan: ${terraformError(plan.stderr || plan.stdout)}` };
  fs.chmodSync(path.resolve(workspace.dir, planFile), 0o600);
  const show = await workspace.run(['show', '-json', planFile]);
  if (show.code !== 0) return { ...base, status: 'failed', reason: `terraform show: ${terraformError(show.stderr)}` };
  const summary = summarizeTerraformPlan(JSON.parse(show.stdout), stack.json as never);
  return { ...base, status: 'planned', summary, ...(options.offline ? {} : { planFile }) };
}

/** Where a planned stack deploys new TLS material to a datacenter that has some (its secret resources update). */
function tlsMaterialChanges(mesh: MeshManifest, plans: readonly StackPlan[]): MeshChange[] {
  const changes: MeshChange[] = [];
  for (const plan of plans) {
    if (plan.mesh !== mesh.mesh || !plan.summary || !plan.datacenter) continue;
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

/** Why a stack cannot be planned here, or undefined when it can. */
function unplannable(
  stack: StackInfo,
  options: PlanOptions,
  env: TerraformEnvironment | undefined,
  unavailable: string,
): string | undefined {
  if (!env) return unavailable;
  if (stack.json.terraform?.cloud && !options.offline) {
    return 'Terraform Cloud plans this workspace remotely (a speculative plan cannot be saved here); the mesh-level plan and gates cover it';
  }
  if (options.offline) {
    const missing = stackProviders(stack.json).filter(
      (p) => !fs.existsSync(path.join(env.mirror ?? '', 'registry.terraform.io', 'hashicorp', p)),
    );
    if (missing.length > 0)
      return `offline: provider ${missing.map((p) => `hashicorp/${p}`).join(', ')} is not in the local provider mirror`;
  }
  return undefined;
}

/** Plans the project: synthesis, Terraform plans, mesh-level diff against what was applied, gates, pictures. */
export async function planProject(options: PlanOptions): Promise<PlanDocument> {
  return (await planWithSynthesis(options)).plan;
}

/** Every mesh's last synthesized topology in the store (read before a synthesis records the new one). */
function lastSynthesizedMeshes(store: SecretStore): Map<string, MeshManifest> {
  const meshes = new Map<string, MeshManifest>();
  if (!fs.existsSync(store.directory)) return meshes;
  for (const entry of fs.readdirSync(store.directory, { withFileTypes: true })) {
    if (!entry.isDirectory() || !store.has(entry.name)) continue;
    const last = lastSynthesized(store, entry.name);
    if (last) meshes.set(entry.name, last);
  }
  return meshes;
}

/** A plan with what it was made from, which `meshform deploy` applies without working it out again. */
export interface PlanWithSynthesis {
  readonly plan: PlanDocument;
  /** The synthesis planned. */
  readonly synthesis: MeshSynthesis;
  /** The Terraform the plans ran with (absent when Terraform was not available or skipped). */
  readonly terraform?: TerraformEnvironment;
  /** Every mesh's secrets as values of the stacks' sensitive variables. */
  readonly secrets: { readonly [variable: string]: string };
  /** Each synthesized stack's Terraform JSON, by stack name. */
  readonly stackJson: ReadonlyMap<string, StackInfo['json']>;
}

/** The plan and the synthesis it was made from (what `meshform deploy` applies). */
export async function planWithSynthesis(options: PlanOptions): Promise<PlanWithSynthesis> {
  const previouslySynthesized = lastSynthesizedMeshes(options.store);
  const synthesis = synthesizeMeshes(options.projectDir, options.store);
  const cache = cacheDirectory(options.projectDir);
  const availability = options.terraform
    ? terraformAvailability({ offline: options.offline })
    : { ok: false as const, reason: 'skipped (--no-terraform)' };
  const env = availability.ok ? availability.env : undefined;
  const stacks = stacksOf(synthesis);
  const secrets = secretVariables(options.store, synthesis.result.meshes);

  const initLock = new Lock();
  let finished = 0;
  const results = await pool(
    stacks.map((stack) => async (): Promise<StackPlan> => {
      const reason = unplannable(stack, options, env, availability.ok ? '' : `Terraform ${availability.reason}`);
      const result: StackPlan = reason
        ? { ...stackIdentity(stack), status: 'not-planned', reason }
        : await planStack(stack, env!, options, cache, secrets, initLock);
      finished++;
      options.progress?.step(`planned ${finished}/${stacks.length} stacks`);
      return result;
    }),
    options.parallelism,
  );
  // A stack that failed while something it depends on was never applied is waiting for it, not broken.
  const plans = results.map((r) => {
    if (r.status !== 'failed') return r;
    const pending = r.dependsOn.filter((dep) => {
      const upstream = results.find((u) => u.stack === dep);
      return !upstream?.summary?.applied;
    });
    return pending.length > 0
      ? { ...r, status: 'not-planned' as const, reason: `upstream ${pending.join(', ')} not yet applied (${r.reason})` }
      : r;
  });

  const meshes: MeshPlan[] = [];
  for (const mesh of synthesis.result.meshes) {
    const lookups: MeshPlan['applied'][number][] = [];
    const records: AppliedRecord[] = [];
    let fallback = false;
    const last = previouslySynthesized.get(mesh.mesh);
    /** Keeps a stack's record; where its state cannot be read, the last synthesized topology stands in. */
    const take = (lookup: AppliedLookup, stack: string, datacenter: string) => {
      if (lookup.record) records.push(lookup.record);
      else if (lookup.source === 'unavailable' && last?.datacenters.some((d) => d.name === datacenter)) {
        fallback = true;
        records.push({
          format: APPLIED_RECORD_FORMAT,
          mesh: mesh.mesh,
          stack,
          datacenter,
          manifest: scopeManifest(last, datacenter),
        });
      }
    };
    for (const dc of mesh.datacenters) {
      const stack = stacks.find(
        (s) => s.datacenter === dc.name && s.mesh?.mesh === mesh.mesh && s.json.output?.[APPLIED_OUTPUT] !== undefined,
      );
      if (!stack) continue;
      const planned = plans.find((p) => p.stack === stack.name)?.summary;
      const lookup = await readAppliedRecord(stack.name, stack.dir, stack.json, planned);
      lookups.push({ stack: stack.name, datacenter: dc.name, source: lookup.source, detail: lookup.detail });
      take(lookup, stack.name, dc.name);
    }
    // datacenters that left the topology: what they applied is still in their state
    for (const dc of last?.datacenters.filter((d) => !mesh.datacenters.some((a) => a.name === d.name)) ?? []) {
      // the control-plane stack (the one that records what it applied) is named <mesh>-<datacenter>
      const stack = dc.stacks.find((st) => st.name === `${mesh.mesh}-${dc.name}`);
      if (!stack?.location) continue;
      const lookup = await readAppliedRecord(
        stack.name,
        path.join(synthesis.result.outdir, 'stacks', stack.name),
        { terraform: stack.location },
        undefined,
      );
      lookups.push({
        stack: stack.name,
        datacenter: dc.name,
        source: lookup.source,
        detail: `${lookup.detail} (no longer in the app)`,
      });
      take(lookup, stack.name, dc.name);
    }
    const before = mergeAppliedRecords(records);
    const changes = [...diffMesh(before, mesh), ...tlsMaterialChanges(mesh, plans)];
    const meshStacks = plans
      .filter((p) => p.mesh === mesh.mesh && p.summary)
      .map((p) => ({ stack: p.stack, resources: p.summary!.resources }));
    const gates = evaluateGates(before, mesh, changes, meshStacks, options.allow);
    const pictureDir = path.join(synthesis.result.outdir, MESH_MANIFEST_DIR, 'plan');
    fs.mkdirSync(pictureDir, { recursive: true });
    const picture = path.join(pictureDir, `${mesh.mesh}.svg`);
    fs.writeFileSync(picture, renderPlanSvg(mesh, before, changes));
    meshes.push({
      mesh: mesh.mesh,
      comparedWith:
        records.length === 0
          ? 'nothing'
          : fallback
            ? 'last-synthesized'
            : records.length < lookups.length
              ? 'partly-applied'
              : 'applied',
      applied: lookups,
      changes,
      certificates: (synthesis.stores.find((st) => st.mesh === mesh.mesh)?.certificates ?? []).map((l) =>
        l.replace(/\u001b\[[0-9;]*m/g, ''),
      ),
      gates,
      picture: path.relative(options.projectDir, picture),
    });
  }
  options.progress?.done();
  const failed = plans.some((p) => p.status === 'failed');
  const gated = meshes.some((m) => m.gates.some((g) => !g.acknowledged));
  const plan: PlanDocument = {
    format: PLAN_FORMAT,
    mode: options.offline ? 'offline' : 'online',
    terraform: env
      ? { available: true, version: env.version }
      : { available: false, reason: availability.ok ? undefined : availability.reason },
    meshes,
    stacks: dependencyOrder(plans).map((name) => plans.find((p) => p.stack === name)!),
    exitCode: failed ? PLAN_EXIT.error : gated ? PLAN_EXIT.gated : PLAN_EXIT.ok,
  };
  return { plan, synthesis, terraform: env, secrets, stackJson: new Map(stacks.map((st) => [st.name, st.json])) };
}
