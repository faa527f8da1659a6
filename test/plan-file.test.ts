import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { terraformAvailability } from '../cli/terraform';
import { StackPlanSummary, summarizeTerraformPlan } from '../cli/terraform-plan';
import { readPlanFile } from '../cli/terraform-planfile';
import { tempDir } from './support';

// meshform plan reads each saved plan file itself (cli/terraform-planfile.ts) instead of `terraform show -json`.
// Its consumer is the plan's summary: for real plans made by Terraform, the summary of the decoded file must be
// the summary of what `terraform show -json` prints for the same file (hashicorp/terraform v1.11.4,
// internal/plans/planproto/planfile.proto and internal/command/jsonplan/plan.go).

const available = terraformAvailability({ offline: true });
if (!available.ok) console.warn(`skipping the plan file decoder against real Terraform: ${available.reason}`);

/** What the synthesized stack says of its resources: the construct paths the summary maps resources to. */
const STACK_JSON = {
  resource: {
    terraform_data: {
      change: { '//': { metadata: { path: 'stack/change' } } },
      swap: { '//': { metadata: { path: 'stack/swap' } } },
    },
  },
};

function terraform(dir: string, ...args: string[]): string {
  const r = spawnSync(available.ok ? available.env.binary : 'terraform', args, {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: {
      ...process.env,
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      TF_CLI_CONFIG_FILE: path.join(dir, '.terraformrc'),
      AWS_ACCESS_KEY_ID: 'meshform-offline',
      AWS_SECRET_ACCESS_KEY: 'meshform-offline',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
  if (r.status !== 0) throw new Error(`terraform ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The summary of a saved plan both ways: decoded from the file, and from `terraform show -json`. */
function bothWays(dir: string, planFile = 'test.tfplan'): { decoded: StackPlanSummary; shown: StackPlanSummary } {
  const decodedJson = readPlanFile(fs.readFileSync(path.join(dir, planFile)));
  expect(decodedJson, 'a Terraform 1.11 plan file is decoded (format version 3)').toBeDefined();
  const shown = summarizeTerraformPlan(JSON.parse(terraform(dir, 'show', '-json', planFile)), STACK_JSON);
  return { decoded: summarizeTerraformPlan(decodedJson!, STACK_JSON), shown };
}

/** A configuration of built-in `terraform_data` resources (no provider to install), in a module too. */
function configuration(dir: string, version: 1 | 2): void {
  const v1 = version === 1;
  fs.mkdirSync(path.join(dir, 'inner'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'inner', 'main.tf.json'),
    JSON.stringify({
      variable: { n: { type: 'number' } },
      resource: { terraform_data: { x: { input: '${var.n}' } } },
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'main.tf.json'),
    JSON.stringify({
      module: {
        b: { source: './inner', n: v1 ? 1 : 2 },
        a: { source: './inner', for_each: { k: 1 }, n: 1 },
      },
      resource: {
        terraform_data: {
          keep: { input: 'same' },
          change: { input: v1 ? 'one' : 'two' },
          swap: { input: 'x', triggers_replace: [v1 ? 'first' : 'second'] },
          ...(v1 ? { gone: { input: 'bye' } } : {}),
          many: { count: v1 ? 12 : 1, input: '${count.index}' },
          each: { for_each: v1 ? { 'a.b': 1, c: 2, B: 3 } : { c: 2 }, input: '${each.value}' },
        },
      },
      output: {
        same: { value: 'same' },
        changed: { value: v1 ? 'one' : 'two' },
        structured: { value: { list: [1, 2.5, -3], nested: { flag: true, none: null, text: 'é "q"' } } },
        secret: { value: v1 ? 's1' : 's2', sensitive: true },
        big: { value: v1 ? 4294967296 : 1 },
        ...(v1 ? { gone: { value: 'g' } } : { added: { value: 'new' } }),
      },
    }),
  );
}

describe.skipIf(!available.ok)('the saved plan file read directly summarizes as `terraform show -json` does', () => {
  const dir = tempDir('meshform-planfile-');
  beforeAll(() => {
    fs.writeFileSync(path.join(dir, '.terraformrc'), '');
    configuration(dir, 1);
    terraform(dir, 'init', '-input=false', '-no-color');
  }, 120_000);

  it('a plan of nothing applied yet: every resource to create, in modules and with count and for_each keys', () => {
    terraform(dir, 'plan', '-input=false', '-no-color', '-out=test.tfplan');
    const { decoded, shown } = bothWays(dir);
    expect(decoded).toStrictEqual(shown);
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(shown)); // the same order too
    expect(decoded.counts).toEqual({ create: 21, update: 0, replace: 0, delete: 0 });
    expect(decoded.applied).toBe(false);
  }, 120_000);

  it('after an apply: an update, a replace with its replace path, deletes, and changed, added and removed outputs', () => {
    terraform(dir, 'apply', '-input=false', '-no-color', '-auto-approve');
    configuration(dir, 2);
    terraform(dir, 'plan', '-input=false', '-no-color', '-out=test.tfplan');
    const { decoded, shown } = bothWays(dir);
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(shown));
    expect(decoded.counts).toEqual({ create: 0, update: 2, replace: 1, delete: 14 });
    expect(decoded.resources.find((r) => r.address === 'terraform_data.swap')).toEqual({
      address: 'terraform_data.swap',
      type: 'terraform_data',
      action: 'replace',
      constructPath: 'stack/swap',
      replaceBecause: ['triggers_replace'],
    });
    expect(decoded.outputsChanged).toEqual(['added', 'big', 'changed', 'gone', 'secret']);
    expect(decoded.priorOutputs).toEqual({
      big: 4294967296,
      changed: 'one',
      gone: 'g',
      same: 'same',
      structured: { list: [1, 2.5, -3], nested: { flag: true, none: null, text: 'é "q"' } },
    });
    expect(decoded.priorResources).toBe(19); // the root module's (prior_state.values.root_module)
    expect(decoded.applied).toBe(true);
  }, 120_000);

  it('a destroy plan of what was applied', () => {
    terraform(dir, 'plan', '-input=false', '-no-color', '-destroy', '-out=destroy.tfplan');
    const { decoded, shown } = bothWays(dir, 'destroy.tfplan');
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(shown));
    expect(decoded.counts).toEqual({ create: 0, update: 0, replace: 0, delete: 21 });
  }, 120_000);

  it('an AWS plan (the provider from the local mirror): the same summary', () => {
    const aws = tempDir('meshform-planfile-aws-');
    fs.writeFileSync(
      path.join(aws, '.terraformrc'),
      `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(available.ok ? available.env.mirror : '')}\n  }\n}\n`,
    );
    fs.writeFileSync(
      path.join(aws, 'main.tf.json'),
      JSON.stringify({
        terraform: { required_providers: { aws: { source: 'hashicorp/aws' } } },
        provider: {
          aws: {
            region: 'us-east-1',
            skip_credentials_validation: true,
            skip_requesting_account_id: true,
            skip_metadata_api_check: 'true',
          },
        },
        resource: {
          aws_vpc: { main: { cidr_block: '10.0.0.0/16' } },
          aws_subnet: {
            s: { count: 2, vpc_id: '${aws_vpc.main.id}', cidr_block: '${cidrsubnet("10.0.0.0/16", 8, count.index)}' },
          },
        },
        output: { vpc: { value: '${aws_vpc.main.id}' } },
      }),
    );
    terraform(aws, 'init', '-input=false', '-no-color');
    terraform(aws, 'plan', '-input=false', '-no-color', '-refresh=false', '-out=test.tfplan');
    const { decoded, shown } = bothWays(aws);
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(shown));
    expect(decoded.counts).toEqual({ create: 3, update: 0, replace: 0, delete: 0 });
  }, 300_000);

  it('a file that is not a plan of the format decoded here is not decoded (the caller asks terraform show)', () => {
    expect(readPlanFile(Buffer.from('not a zip'))).toBeUndefined();
    expect(readPlanFile(fs.readFileSync(path.join(dir, 'main.tf.json')))).toBeUndefined();
    // planfile.proto: Plan.version is field 1 (a varint); tfplan.go reads version 3 only
    expect(readPlanFile(storedZip('tfplan', Buffer.from([0x08, 0x03])))).toEqual({
      resource_changes: [],
      output_changes: {},
      prior_state: { values: { root_module: { resources: [] } } },
    });
    expect(readPlanFile(storedZip('tfplan', Buffer.from([0x08, 0x04])))).toBeUndefined();
    expect(readPlanFile(storedZip('tfstate', Buffer.from('{}')))).toBeUndefined();
  });
});

/** A zip archive of one stored (uncompressed) entry. */
function storedZip(name: string, data: Buffer): Buffer {
  const nameBytes = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + nameBytes.length, 12);
  end.writeUInt32LE(30 + nameBytes.length + data.length, 16);
  return Buffer.concat([local, nameBytes, data, central, nameBytes, end]);
}
