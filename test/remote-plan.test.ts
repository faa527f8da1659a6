/**
 * `meshform plan` of stacks on Terraform Cloud: planned through its API (configuration version, upload, run,
 * plan JSON), against a stand-in on 127.0.0.1 that serves the plan JSON real Terraform made of the same stacks
 * (`terraform plan` + `terraform show -json`): the summaries and gates are those of the local path, and a
 * refusal of the API (401, 403, 404) is "cannot tell" (exit 1), never "nothing applied".
 *
 * API facts: hashicorp/terraform-docs-common website/docs/cloud-docs/api-docs/{configuration-versions,run,plans}.mdx;
 * hashicorp/go-tfe run.go (save-plan, planned_and_saved); hashicorp/terraform internal/cloud/backend_plan.go
 * (auto-queue-runs false, speculative without -out, provisional and save-plan with it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deployWithResult, type DeployResult } from '../cli/deploy';
import { planProject as planDocument, type PlanDocument, type PlanOptions } from '../cli/plan';
import { renderPlanMarkdown } from '../cli/plan-markdown';
import { terraformAvailability } from '../cli/terraform';
import { APPLIED_OUTPUT } from '../constructs/private/mesh-manifest';
import { SecretStore } from '../index';
import { readOutput, REPO, RUN_TS, runAsync, tempDir } from './support';
import { StandInStep, terraformCloudPlanStandIn, TerraformCloudPlanStandIn } from './tfc-plan-standin';

const available = terraformAvailability({ offline: true });
const validate = new Ajv({ strict: true }).compile(
  JSON.parse(fs.readFileSync(path.join(REPO, 'docs', 'plan.schema.json'), 'utf8')),
);
const TOKEN = 'team-token-of-acme';
const STACKS = ['shop-east', 'shop-west'];

/** GIVEN a project: two VM datacenters on AWS (east primary, west dials east's gateway), from topology.json. */
function vmProject(): {
  dir: string;
  store: string;
  set(t: { backend: 'local' | 'cloud'; eastGateway: string }): void;
} {
  const dir = tempDir('meshform-remote-plan-');
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `import * as fs from 'node:fs';
import { App, MachineImage, Mesh, StateBackend, VmDatacenter, VmHosts, VmNetwork } from ${JSON.stringify(path.join(REPO, 'index'))};
const t = JSON.parse(fs.readFileSync('topology.json', 'utf8'));
const app = new App({ stackTraces: false });
const backend = t.backend === 'cloud' ? StateBackend.terraformCloud({ organization: 'acme' }) : undefined;
const mesh = new Mesh(app, 'shop', backend ? { backend } : {});
const hosts = (cidr: string) =>
  VmHosts.onAws({ region: 'eu-west-1', network: VmNetwork.newVpc({ cidr }), machineImage: MachineImage.fromId('ami-0123456789abcdef0') });
new VmDatacenter(mesh, 'east', { primary: true, meshGateway: { address: t.eastGateway }, hosts: hosts('10.20.0.0/16') });
new VmDatacenter(mesh, 'west', { meshGateway: { address: 'mgw.west.example.com' }, hosts: hosts('10.30.0.0/16') });
app.synth();
`,
  );
  fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ language: 'typescript', app: `${RUN_TS} app.ts` }));
  return {
    dir,
    store: path.join(dir, 'store'),
    set: (t) => fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify(t)),
  };
}

/** Records in each stack's local state what it would apply now, as `terraform apply` would (its outputs). */
function markApplied(dir: string): void {
  for (const name of STACKS) {
    const stackDir = path.join(dir, 'cdktf.out', 'stacks', name);
    const json = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8'));
    const value = json.output?.[APPLIED_OUTPUT]?.value;
    if (typeof value !== 'string') continue;
    fs.writeFileSync(
      path.resolve(stackDir, json.terraform.backend.local.path),
      JSON.stringify({
        version: 4,
        terraform_version: available.ok ? available.env.version : '1.11.4',
        serial: 1,
        lineage: `test-${name}`,
        outputs: { [APPLIED_OUTPUT]: { value, type: 'string' } },
        resources: [],
        check_results: null,
      }),
    );
  }
}

/** The JSON of the plan meshform saved for a stack offline, as `terraform show -json` prints it. */
function showJson(dir: string, stack: string): unknown {
  const work = path.join(dir, '.meshform-cache', 'offline', stack);
  const show = spawnSync(available.ok ? available.env.binary : 'terraform', ['show', '-json', 'meshform.tfplan'], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, TF_CLI_CONFIG_FILE: path.join(work, '.terraformrc') },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (show.status !== 0) throw new Error(show.stderr);
  return JSON.parse(show.stdout);
}

describe.skipIf(!available.ok)('remote plans through Terraform Cloud’s API (stand-in on 127.0.0.1)', () => {
  const p = vmProject();
  let local: PlanDocument;
  const plans: { [stack: string]: unknown } = {};
  let api: TerraformCloudPlanStandIn | undefined;

  beforeAll(async () => {
    // GIVEN both datacenters applied with east's gateway at mgw-1, then east's gateway moved to mgw-2
    p.set({ backend: 'local', eastGateway: 'mgw-1.east.example.com' });
    const first = await runAsync(['plan', '--offline', '--json', '--project', p.dir, '--secrets-dir', p.store]);
    expect(JSON.parse(first.stdout).exitCode).toBe(0);
    markApplied(p.dir);
    p.set({ backend: 'local', eastGateway: 'mgw-2.east.example.com' });
    // WHEN planned locally by real Terraform (offline, against the local states)
    const planned = await runAsync(['plan', '--offline', '--json', '--project', p.dir, '--secrets-dir', p.store]);
    local = JSON.parse(planned.stdout) as PlanDocument;
    for (const stack of STACKS) plans[stack] = showJson(p.dir, stack);
    // AND the same mesh with its state in Terraform Cloud
    p.set({ backend: 'cloud', eastGateway: 'mgw-2.east.example.com' });
  }, 600_000);

  afterEach(async () => {
    delete process.env.TF_TOKEN_app_terraform_io;
    await api?.close();
    api = undefined;
  });

  /** The options of an online plan of the project (Terraform Cloud's address and token aside). */
  const online = (): PlanOptions => ({
    projectDir: p.dir,
    store: SecretStore.open({ directory: p.store }),
    offline: false,
    parallelism: 2,
    allow: new Set(),
    terraform: true,
  });

  /** WHEN helper: the plan of the cloud-backed project against a stand-in serving the real plans. */
  async function planInCloud(
    extra: Partial<PlanOptions> = {},
    refuse?: { step: StandInStep; status: 401 | 403 | 404 },
  ): Promise<PlanDocument> {
    api = await terraformCloudPlanStandIn({
      organization: 'acme',
      token: TOKEN,
      workspaces: Object.fromEntries(STACKS.map((s) => [s, { plan: plans[s] }])),
      ...(refuse ? { refuse } : {}),
    });
    process.env.TF_TOKEN_app_terraform_io = TOKEN;
    const base = api.base;
    const plan = await planDocument({
      ...online(),
      terraformCloudBaseUrl: () => base,
      terraformCloudPollMs: 5,
      ...extra,
    });
    expect(validate(plan), JSON.stringify(validate.errors)).toBe(true);
    return plan;
  }

  it('the local path (real terraform plan) fires gateway-readdress: the baseline the remote plan must match', () => {
    expect(local.exitCode).toBe(3);
    expect(local.stacks.map((s) => `${s.stack}: ${s.status}`)).toEqual(['shop-east: planned', 'shop-west: planned']);
    expect(local.meshes[0]!.gates.map((g) => `${g.id}: ${g.status}`)).toEqual(['gateway-readdress: fired']);
    expect(local.meshes[0]!.comparedWith).toBe('applied');
  });

  it('plans each workspace in Terraform Cloud and gates it exactly as the local path', async () => {
    const remote = await planInCloud();
    // THEN every stack was planned by a speculative run in its workspace
    expect(
      remote.stacks.map((s) => `${s.stack}: ${s.status} ${s.remote?.mode} ${s.remote?.run.startsWith('run-')}`),
    ).toEqual(['shop-east: planned speculative true', 'shop-west: planned speculative true']);
    // AND the summaries, the mesh change, the comparison and the gates are those of the local path
    for (const stack of STACKS)
      expect(remote.stacks.find((s) => s.stack === stack)!.summary).toEqual(
        local.stacks.find((s) => s.stack === stack)!.summary,
      );
    const [r, l] = [remote.meshes[0]!, local.meshes[0]!];
    expect(r.comparedWith).toBe(l.comparedWith);
    // the records were applied with local state and these stacks keep theirs in Terraform Cloud: that move is a
    // change of its own, which only the cloud-backed synthesis has; every other change is the local path's
    const moved = (c: { subject: string }) => /^stacks of /.test(c.subject);
    expect(r.changes.filter(moved).map((c) => c.summary)).toEqual([
      'datacenter east: stacks or state backend change',
      'datacenter west: stacks or state backend change',
    ]);
    expect(r.changes.filter((c) => !moved(c))).toEqual(l.changes);
    expect(r.gates).toEqual(l.gates);
    expect(r.applied.map((a) => a.source)).toEqual(['terraform-plan', 'terraform-plan']);
    expect(remote.exitCode).toBe(local.exitCode);
    // AND nothing of a local saved plan: Terraform Cloud holds the plan
    expect(remote.stacks.every((s) => s.planFile === undefined)).toBe(true);
  });

  it('speaks the API-driven run workflow: configuration version, upload without the token, run, JSON by redirect', async () => {
    await planInCloud();
    const record = api!.record;
    expect(
      record.configurationVersions.map((c) => [c.workspace, c.attributes['auto-queue-runs'], c.attributes.speculative]),
    ).toEqual(
      expect.arrayContaining([
        ['shop-east', false, true],
        ['shop-west', false, true],
      ]),
    );
    // the uploaded .tar.gz is the stack's synthesized directory: its cdk.tf.json byte for byte
    for (const cv of record.configurationVersions) {
      expect(cv.files).toContain('./cdk.tf.json');
      const uploaded = execFileSync('tar', ['-xzOf', '-', './cdk.tf.json'], {
        input: record.uploads.get(String(cv.attributes.id)),
      });
      expect(uploaded.toString()).toBe(
        fs.readFileSync(path.join(p.dir, 'cdktf.out', 'stacks', cv.workspace, 'cdk.tf.json'), 'utf8'),
      );
      expect(cv.files!.some((f) => f.startsWith('./.terraform/'))).toBe(false);
    }
    expect(record.runs.map((r) => [r.workspace, r.attributes['plan-only'], r.attributes['save-plan']])).toEqual(
      expect.arrayContaining([
        ['shop-east', true, undefined],
        ['shop-west', true, undefined],
      ]),
    );
    for (const run of record.runs)
      expect(run.statuses).toEqual(['pending', 'plan_queued', 'planning', 'planned_and_finished']);
    // the token goes to the API only, never to the pre-authorized archive URLs
    const archivist = record.requests.filter((r) => r.includes(' archivist/'));
    expect(archivist.length).toBe(4);
    expect(archivist.every((r) => r.endsWith(' -'))).toBe(true);
    expect(record.requests.filter((r) => !r.includes(' archivist/')).every((r) => r.endsWith(`Bearer ${TOKEN}`))).toBe(
      true,
    );
    expect(record.requests.filter((r) => /json-output/.test(r)).length).toBe(4); // 204 once, then the redirect
  });

  it('saved plan runs: a provisional configuration version and a save-plan run, planned_and_saved', async () => {
    const remote = await planInCloud({ remotePlans: 'saved' });
    expect(remote.stacks.map((s) => s.remote?.mode)).toEqual(['saved', 'saved']);
    const record = api!.record;
    expect(record.configurationVersions.map((c) => [c.attributes.speculative, c.attributes.provisional])).toEqual([
      [false, true],
      [false, true],
    ]);
    expect(record.runs.map((r) => [r.attributes['save-plan'], r.attributes['plan-only']])).toEqual([
      [true, undefined],
      [true, undefined],
    ]);
    expect(record.runs.map((r) => r.statuses.at(-1))).toEqual(['planned_and_saved', 'planned_and_saved']);
    expect(remote.meshes[0]!.gates).toEqual(local.meshes[0]!.gates);
  });

  const refusals: [StandInStep, 401 | 403 | 404, string][] = [
    ['workspace', 404, 'reading'],
    ['workspace', 401, 'reading'],
    ['configuration-version', 403, 'creating a configuration version'],
    ['run', 404, 'creating a run'],
    ['json-output', 404, 'reading the JSON of plan'],
  ];
  it.each(refusals)(
    'HTTP %s refused with %i: cannot tell (exit 1), never "nothing applied"',
    async (step, status, what) => {
      const remote = await planInCloud({}, { step, status });
      // THEN the plan is incomplete, each stack says why, and what was applied is not taken for nothing
      expect(remote.exitCode).toBe(1);
      for (const stack of remote.stacks) {
        expect(stack.status).toBe('failed');
        expect(stack.summary).toBeUndefined();
        expect(stack.reason).toMatch(
          new RegExp(
            `^what Terraform Cloud would change cannot be told: Terraform Cloud answers HTTP ${status} to ${what}.* of workspace acme/${stack.stack}: `,
          ),
        );
      }
      expect(remote.meshes[0]!.comparedWith).toBe('unreadable');
      expect(remote.meshes[0]!.changes).toEqual([]);
      expect(new Set(remote.meshes[0]!.gates.map((g) => g.status))).toEqual(new Set(['cannot-evaluate']));
    },
  );

  it('the command line: MESHFORM_TFC_API_URL reaches the stand-in; a 403 exits 1 and the comment says why', async () => {
    api = await terraformCloudPlanStandIn({
      organization: 'acme',
      token: TOKEN,
      workspaces: Object.fromEntries(STACKS.map((s) => [s, { plan: plans[s] }])),
      refuse: { step: 'workspace', status: 403 },
    });
    process.env.TF_TOKEN_app_terraform_io = TOKEN;
    process.env.MESHFORM_TFC_API_URL = api.base;
    try {
      const { code, stdout } = await runAsync(['plan', '--markdown', '--project', p.dir, '--secrets-dir', p.store]);
      expect(code).toBe(1);
      expect(stdout).toContain('## meshform plan: ❓ incomplete');
      expect(stdout).toContain(
        'what Terraform Cloud would change cannot be told: Terraform Cloud answers HTTP 403 to reading of workspace acme/shop-east: the token is not allowed to',
      );
    } finally {
      delete process.env.MESHFORM_TFC_API_URL;
    }
  });

  it('no token: cannot tell, and the plan names the variables that give one', async () => {
    const plan = await planDocument(online());
    expect(plan.exitCode).toBe(1);
    expect(plan.stacks[0]!.reason).toBe(
      'what Terraform Cloud would change cannot be told: no token for app.terraform.io (TF_TOKEN_app_terraform_io, TFE_TOKEN or terraform login)',
    );
  });

  /** WHEN helper: `meshform deploy --auto-approve --allow gateway-readdress` against a runs stand-in. */
  async function deployInCloud(
    standIn: { refuse?: { step: StandInStep; status: 401 | 403 | 404 }; applyErrors?: string[] } = {},
  ): Promise<{ result: DeployResult; output: string }> {
    api = await terraformCloudPlanStandIn({
      organization: 'acme',
      token: TOKEN,
      workspaces: Object.fromEntries(STACKS.map((s) => [s, { plan: plans[s] }])),
      ...standIn,
    });
    process.env.TF_TOKEN_app_terraform_io = TOKEN;
    const base = api.base;
    let output = '';
    const result = await deployWithResult({
      ...online(),
      allow: new Set(['gateway-readdress']),
      terraformCloudBaseUrl: () => base,
      terraformCloudPollMs: 5,
      autoApprove: true,
      confirm: async () => false,
      write: (t) => (output += t.replace(/\x1b\[[0-9;]*m/g, '')),
    });
    return { result, output };
  }

  // run.mdx "Apply a Run": POST /runs/:run_id/actions/apply (202; 409 when not paused for confirmation)
  it('deploy applies exactly the saved plan run of each stack, in dependency order', async () => {
    const { result, output } = await deployInCloud();
    expect(result.outcome).toBe('applied');
    expect(result.exitCode).toBe(0);
    const record = api!.record;
    expect(record.runs.map((r) => r.attributes['save-plan'])).toEqual([true, true]);
    const planned = Object.fromEntries(result.plan!.stacks.map((s) => [s.stack, s.remote!.run]));
    // each stack's apply is the run the plan showed, after the stacks it depends on
    expect(record.applies.map((a) => [a.workspace, a.run])).toEqual(
      result
        .plan!.stacks.slice()
        .sort((a, b) => (a.dependsOn.includes(b.stack) ? 1 : b.dependsOn.includes(a.stack) ? -1 : 0))
        .map((s) => [s.stack, planned[s.stack]]),
    );
    expect(
      record.applies.every(
        (a) => a.comment === `meshform deploy of ${a.workspace}, approved in plan run ${result.plan!.run}`,
      ),
    ).toBe(true);
    expect(record.runs.map((r) => r.statuses.slice(-4))).toEqual([
      ['confirmed', 'apply_queued', 'applying', 'applied'],
      ['confirmed', 'apply_queued', 'applying', 'applied'],
    ]);
    expect(result.journal!.stacks).toEqual({ 'shop-east': 'applied', 'shop-west': 'applied' });
    for (const s of result.plan!.stacks)
      expect(output).toContain(`${s.stack}: apply of Terraform Cloud run ${s.remote!.run} (${s.remote!.url})`);
    expect(output).toContain('deploy complete');
  });

  it('deploy stops at a run whose apply errored, with the run address, and records it', async () => {
    const { result, output } = await deployInCloud({ applyErrors: ['shop-east'] });
    expect(result.outcome).toBe('failed');
    expect(result.exitCode).toBe(1);
    const east = result.plan!.stacks.find((s) => s.stack === 'shop-east')!.remote!;
    const reason = `Terraform Cloud run ${east.run} of workspace acme/shop-east errored (${east.url})`;
    expect(result.journal!.failed).toEqual({ stack: 'shop-east', reason });
    expect(result.journal!.stacks['shop-east']).toBe('failed');
    expect(output).toContain(`shop-east: apply failed: ${reason}`);
    // nothing after it was confirmed
    expect(api!.record.applies.map((a) => a.workspace)).toEqual(['shop-east']);
  });

  it.each([401, 403, 404] as const)(
    'deploy fails closed when Terraform Cloud answers %i to the apply: never counted as applied',
    async (status) => {
      const { result, output } = await deployInCloud({ refuse: { step: 'apply', status } });
      expect(result.outcome).toBe('failed');
      expect(result.exitCode).toBe(1);
      expect(Object.values(result.journal!.stacks)).not.toContain('applied');
      expect(result.journal!.failed!.reason).toMatch(
        new RegExp(
          `^whether it was applied cannot be told: Terraform Cloud answers HTTP ${status} to applying run run-\\d+ of workspace acme/shop-east: .*\\(http://127\\.0\\.0\\.1:\\d+/app/acme/workspaces/shop-east/runs/run-\\d+\\)$`,
        ),
      );
      expect(output).toContain('shop-east: apply failed: whether it was applied cannot be told');
    },
  );

  it('the pull-request comment links each remote run', async () => {
    const remote = await planInCloud();
    const manifest = readOutput(path.join(p.dir, 'cdktf.out')).mesh('shop');
    const markdown = renderPlanMarkdown(remote, undefined, [manifest]);
    for (const s of remote.stacks)
      expect(markdown).toContain(
        `Planned in Terraform Cloud: speculative plan, run [${s.remote!.run}](${api!.base}/app/acme/workspaces/${s.stack}/runs/${s.remote!.run}).`,
      );
    expect(markdown).toContain('⛔ **blocked** | `gateway-readdress`');
  });
});
