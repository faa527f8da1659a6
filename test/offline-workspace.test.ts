import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StackWorkspace, terraformAvailability } from '../cli/terraform';
import { summarizeTerraformPlan } from '../cli/terraform-plan';
import { readPlanFile } from '../cli/terraform-planfile';
import { tempDir } from './support';

// An offline plan keeps each stack's `terraform init` between runs (WorkspaceOptions.keepInit) while nothing init
// depends on changed, and makes every other file of the copy afresh. Its consumer is Terraform: a kept copy plans
// without init, and a copy whose init no longer fits is initialized again.

const available = terraformAvailability({ offline: true });
if (!available.ok) console.warn(`skipping the offline workspace's kept init: ${available.reason}`);

/** A stack with the AWS provider (from the local mirror) and one built-in resource, as cdktf writes it. */
function writeStack(dir: string, input: string, awsVersion = '5.100.0'): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'cdk.tf.json'),
    JSON.stringify({
      terraform: { required_providers: { aws: { source: 'hashicorp/aws', version: awsVersion } } },
      provider: { aws: [{ region: 'us-east-1' }] },
      resource: { terraform_data: { marker: { input } } },
      output: { marker: { value: '${terraform_data.marker.input}' } },
    }),
  );
}

/** An applied state of that stack: the marker resource with `input`. */
function writeState(file: string, input: string): void {
  fs.writeFileSync(
    file,
    JSON.stringify({
      version: 4,
      terraform_version: available.ok ? available.env.version : '1.11.4',
      serial: 1,
      lineage: '3f1b8a52-5f4c-4d8e-9b1a-0c2d3e4f5a6b',
      outputs: { marker: { value: input, type: 'string' } },
      resources: [
        {
          mode: 'managed',
          type: 'terraform_data',
          name: 'marker',
          provider: 'provider["terraform.io/builtin/terraform"]',
          instances: [
            {
              schema_version: 0,
              attributes: {
                id: 'f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f',
                // terraform_data's input and output are dynamically typed: the state says each value's type
                input: { value: input, type: 'string' },
                output: { value: input, type: 'string' },
                triggers_replace: null,
              },
            },
          ],
        },
      ],
    }),
  );
}

describe.skipIf(!available.ok)('an offline copy keeps its terraform init between runs, and only that', () => {
  const root = tempDir('meshform-workspace-');
  const stackDir = path.join(root, 'cdktf.out', 'stacks', 'demo');
  const work = path.join(root, 'offline');
  const cache = path.join(root, 'plugins');
  const state = path.join(root, 'demo.tfstate');
  const open = (initialState?: string) =>
    new StackWorkspace(
      stackDir,
      available.ok ? available.env : (undefined as never),
      { offline: true, pluginCache: cache, keepInit: true, ...(initialState ? { initialState } : {}) },
      work,
    );
  const plan = async (ws: StackWorkspace) => {
    const r = await ws.run(['plan', '-input=false', '-no-color', '-lock=false', '-refresh=false', '-out=p.tfplan']);
    expect(r.code, r.stderr).toBe(0);
    return summarizeTerraformPlan(readPlanFile(fs.readFileSync(path.join(ws.dir, 'p.tfplan')))!, {});
  };

  it('first run: not initialized; init, then a plan against the copied state', async () => {
    writeStack(stackDir, 'two');
    writeState(state, 'one');
    const ws = open(state);
    expect(ws.initialized).toBe(false);
    expect((await ws.run(['init', '-input=false', '-no-color'])).code).toBe(0);
    ws.initDone();
    const summary = await plan(ws);
    expect(summary.counts).toEqual({ create: 0, update: 1, replace: 0, delete: 0 });
    expect(summary.priorOutputs).toEqual({ marker: 'one' });
  }, 120_000);

  it('second run, nothing init depends on changed: initialized, and nothing of the last run is left', async () => {
    // GIVEN the stack changed its resources only, and its state is gone
    writeStack(stackDir, 'three');
    fs.rmSync(state);
    const ws = open(state);
    expect(ws.initialized).toBe(true);
    expect(fs.readdirSync(ws.dir).sort()).toEqual([
      '.meshform-init',
      '.terraform',
      '.terraform.lock.hcl',
      '.terraformrc',
      'cdk.tf.json',
      'zz_meshform_override.tf.json',
    ]);
    // THEN Terraform plans without init, the new configuration against no state (the old copy did not leak)
    const summary = await plan(ws);
    expect(summary.counts).toEqual({ create: 1, update: 0, replace: 0, delete: 0 });
    expect(summary.applied).toBe(false);
  }, 120_000);

  it('a changed provider requirement, or a plugin cache emptied since, means init again', async () => {
    writeStack(stackDir, 'three', '>= 5.0');
    expect(open().initialized).toBe(false);
    const ws = open();
    expect((await ws.run(['init', '-input=false', '-no-color'])).code).toBe(0);
    ws.initDone();
    expect(open().initialized).toBe(true);
    fs.rmSync(cache, { recursive: true, force: true });
    expect(open().initialized).toBe(false);
  }, 120_000);
});
