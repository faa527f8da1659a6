/**
 * Issue 15, "Done when": a pipeline run on a clean checkout, with only the shared backend and an API token,
 * plans and applies the default example without any file from a laptop.
 *
 * GIVEN the default example (examples/default/main.ts) with its stacks in Terraform Cloud workspaces (run on the
 * team's agents, which reach the kubeconfig context of gcp-europe-west) and its
 * secrets in a Terraform Cloud variable set (the store/variables stand-in, test/tfc-standin.ts, in its own
 * process), a laptop synthesizes (it creates the root and issues into the variable set) and pushes each stack's
 * sensitive variables (`meshform secrets push`); WHEN a fresh copy of only the committed sources (app.ts,
 * cdktf.json) runs examples/pipeline/pipeline.sh plan, then apply, with only the token and the stand-ins'
 * addresses (no passphrase, no terminal, an empty HOME) and the laptop's directory gone; THEN the plan is
 * posted as the pull request's comment, and every stack's saved plan run is confirmed and applied through the
 * runs stand-in (test/tfc-plan-standin.ts) in dependency order.
 *
 * API facts: hashicorp/terraform-docs-common website/docs/cloud-docs/api-docs/run.mdx ("Apply a Run": POST
 * /runs/:run_id/actions/apply, 202, 409 when not paused for confirmation; run states confirmed, apply_queued,
 * applying, applied).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLAN_COMMENT_MARKER } from '../cli/plan-markdown';
import { terraformAvailability } from '../cli/terraform';
import type { StandinProcess } from './standin-process';
import { REPO, RUN_TS, tempDir } from './support';
import { terraformCloudPlanStandIn, TerraformCloudPlanStandIn } from './tfc-plan-standin';
import { startTfcStandin } from './tfc-standin';

const available = terraformAvailability({ offline: true });
const TOKEN = 'team-token-of-acme';
const PASSPHRASE = 'correct horse battery staple';
const MESHFORM = `node ${path.join(REPO, 'bin', 'meshform.js')}`;
/** The default example's stacks (test/__snapshots__/examples.test.ts.snap, examples/default). */
const STACKS = [
  'shop-aws-us-east-infra',
  'shop-aws-us-east',
  'shop-aws-us-east-config',
  'shop-aws-vms',
  'shop-gcp-europe-west',
];

/** A stand-in for GitHub's issue comments API (the pull request's conversation). */
async function githubStandIn(): Promise<{ url: string; comments: string[]; close(): Promise<void> }> {
  const comments: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      const send = (status: number, body: unknown) => ((res.statusCode = status), res.end(JSON.stringify(body)));
      if (req.headers.authorization !== 'Bearer gh-token') return send(401, { message: 'Bad credentials' });
      if (req.url?.startsWith('/repos/acme/shop/issues/7/comments')) {
        if (req.method === 'GET')
          return send(
            200,
            comments.map((body, i) => ({ id: i + 1, body })),
          );
        if (req.method === 'POST') {
          comments.push((JSON.parse(Buffer.concat(chunks).toString()) as { body: string }).body);
          return send(201, { id: comments.length });
        }
      }
      return send(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    comments,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Runs a command with exactly `env` (nothing inherited); resolves with its exit code and output. */
function exec(
  command: string[],
  cwd: string,
  env: { [name: string]: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * The plan Terraform Cloud makes of a stack never applied, as `terraform show -json` prints it: every managed
 * resource and output of its configuration created.
 */
function createEverything(stackJson: {
  resource?: { [type: string]: { [name: string]: unknown } };
  output?: { [name: string]: unknown };
}): unknown {
  return {
    format_version: '1.2',
    terraform_version: '1.11.4',
    resource_changes: Object.entries(stackJson.resource ?? {}).flatMap(([type, byName]) =>
      Object.keys(byName).map((name) => ({
        address: `${type}.${name}`,
        mode: 'managed',
        type,
        name,
        change: { actions: ['create'], before: null, after: {} },
      })),
    ),
    output_changes: Object.fromEntries(
      Object.keys(stackJson.output ?? {}).map((name) => [
        name,
        { actions: ['create'], before: null, after_unknown: true },
      ]),
    ),
  };
}

describe.skipIf(!available.ok)('issue 15: a pipeline on a clean checkout plans and applies the default example', () => {
  let store: StandinProcess | undefined;
  let runs: TerraformCloudPlanStandIn | undefined;
  let github: Awaited<ReturnType<typeof githubStandIn>> | undefined;
  afterAll(async () => {
    await store?.stop();
    await runs?.close();
    await github?.close();
  });

  it('GIVEN a laptop that synthesized and pushed WHEN a clean checkout runs pipeline.sh plan and apply with only a token THEN it plans (comment posted) and applies every stack in dependency order through Terraform Cloud', async () => {
    const transcript: string[] = [];
    const record = async (
      where: string,
      command: string[],
      cwd: string,
      env: { [name: string]: string },
    ): Promise<{ code: number; stdout: string; stderr: string }> => {
      const r = await exec(command, cwd, env);
      transcript.push(`[${where}] $ ${command.map((c) => path.basename(c)).join(' ')}  → exit ${r.code}`);
      return r;
    };
    store = await startTfcStandin({
      token: TOKEN,
      organization: 'acme',
      workspaces: STACKS.map((s) => `mesh-${s}`),
      variableSets: ['shop-secrets'],
    });

    // GIVEN the default example, its stacks in Terraform Cloud workspaces and its secrets in a variable set
    const laptop = tempDir('meshform-e2e-laptop-');
    const source = fs
      .readFileSync(path.join(REPO, 'examples', 'default', 'main.ts'), 'utf8')
      .replace(`from '../../index'`, `from ${JSON.stringify(path.join(REPO, 'index'))}`)
      .replace(
        'import {\n  App,\n',
        'import {\n  App,\n  SecretStore,\n  StateBackend,\n  TerraformCloudExecutionMode,\n',
      )
      .replace(
        `new Mesh(app, 'shop', {\n`,
        `new Mesh(app, 'shop', {\n    secretStore: SecretStore.terraformCloud({ organization: 'acme', variableSet: 'shop-secrets', hostname: ${JSON.stringify(store.host)} }),\n` +
          `    backend: StateBackend.terraformCloud({ organization: 'acme', workspacePrefix: 'mesh-', hostname: ${JSON.stringify(store.host)}, executionMode: TerraformCloudExecutionMode.AGENT }),\n`,
      );
    expect(source).toContain('SecretStore.terraformCloud(');
    fs.writeFileSync(path.join(laptop, 'app.ts'), source);
    fs.writeFileSync(
      path.join(laptop, 'cdktf.json'),
      `${JSON.stringify({ language: 'typescript', app: `${RUN_TS} app.ts` }, null, 2)}\n`,
    );
    const committed = ['app.ts', 'cdktf.json'];
    const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', TFE_TOKEN: TOKEN };
    const onLaptop = { ...base, HOME: tempDir('meshform-e2e-laptop-home-'), MESHFORM_CA_PASSPHRASE: PASSPHRASE };
    const meshform = MESHFORM.split(' ');
    const synth = await record('laptop', [...meshform, 'synth'], laptop, onLaptop);
    expect(synth.stderr).toBe('');
    expect(synth.code).toBe(0);
    const push = await record('laptop', [...meshform, 'secrets', 'push'], laptop, onLaptop);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);

    // the runs stand-in plans each workspace as Terraform would a configuration never applied
    const plans = Object.fromEntries(
      STACKS.map((s) => {
        const json = JSON.parse(fs.readFileSync(path.join(laptop, 'cdktf.out', 'stacks', s, 'cdk.tf.json'), 'utf8'));
        expect(json.terraform.cloud.workspaces.name).toBe(`mesh-${s}`);
        return [`mesh-${s}`, { plan: createEverything(json) }];
      }),
    );
    const manifest = JSON.parse(fs.readFileSync(path.join(laptop, 'cdktf.out', 'manifest.json'), 'utf8')) as {
      stacks: { [name: string]: { dependencies: string[] } };
    };
    expect(Object.keys(manifest.stacks).sort()).toEqual([...STACKS].sort());
    runs = await terraformCloudPlanStandIn({ organization: 'acme', token: TOKEN, workspaces: plans });
    github = await githubStandIn();

    // WHEN a clean checkout (only the committed sources) runs the pipeline, the laptop's directory gone
    const checkout = tempDir('meshform-e2e-checkout-');
    for (const file of committed) fs.copyFileSync(path.join(laptop, file), path.join(checkout, file));
    fs.rmSync(laptop, { recursive: true, force: true });
    const inPipeline = {
      ...base,
      HOME: tempDir('meshform-e2e-runner-home-'),
      MESHFORM,
      MESHFORM_TFC_API_URL: runs.base,
      GITHUB_API_URL: github.url,
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_TOKEN: 'gh-token',
      PR_NUMBER: '7',
    };
    const script = path.join(REPO, 'examples', 'pipeline', 'pipeline.sh');
    const plan = await record('pipeline', ['bash', script, 'plan'], checkout, inPipeline);
    const apply = await record('pipeline', ['bash', script, 'apply'], checkout, inPipeline);
    console.log(
      `issue 15 end-to-end run:\n${transcript.join('\n')}\n` +
        `applied through Terraform Cloud, in order: ${runs.record.applies.map((a) => `${a.workspace} (${a.run})`).join(', ')}\n` +
        `--- pipeline.sh apply output ---\n${apply.stdout.replace(/\x1b\[[0-9;]*m/g, '')}`,
    );

    // THEN the plan passes and its comment is on the pull request
    expect(plan.stderr).not.toMatch(/error/i);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('nothing issued here');
    expect(github.comments).toHaveLength(1);
    expect(github.comments[0]).toContain(PLAN_COMMENT_MARKER);
    for (const s of STACKS) expect(github.comments[0]).toContain(s);
    // AND the apply confirmed exactly the saved plan run of each stack, in dependency order
    expect(apply.stderr).not.toMatch(/error/i);
    expect(apply.stderr).toContain('confirming run');
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('deploy complete');
    const deployRuns = runs.record.runs.slice(STACKS.length); // the deploy's own saved plan runs
    expect(deployRuns.map((r) => r.attributes['save-plan'])).toEqual(STACKS.map(() => true));
    const applied = runs.record.applies.map((a) => a.workspace.replace(/^mesh-/, ''));
    expect([...applied].sort()).toEqual([...STACKS].sort());
    for (const [i, s] of applied.entries())
      for (const dependency of manifest.stacks[s]!.dependencies) expect(applied.indexOf(dependency)).toBeLessThan(i);
    expect(
      runs.record.runs
        .filter((r) => r.statuses.at(-1) === 'applied')
        .map((r) => r.workspace)
        .sort(),
    ).toEqual(STACKS.map((s) => `mesh-${s}`).sort());
    for (const a of runs.record.applies) expect(a.comment).toMatch(/^meshform deploy of shop-/);
    // AND nothing came from the laptop: the checkout holds only what the pipeline made from the sources
    expect(fs.existsSync(laptop)).toBe(false);
    expect(fs.readdirSync(checkout).sort()).toEqual(
      expect.arrayContaining(['app.ts', 'cdktf.json', 'cdktf.out', 'meshform-plan.md']),
    );
  }, 600_000);
});
