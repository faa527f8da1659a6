import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Lock,
  variableEnvironment,
  pool,
  StackWorkspace,
  stackProviders,
  terraformAvailability,
  terraformError,
} from '../cli/terraform';
import { PlanJson, summarizeTerraformPlan } from '../cli/terraform-plan';
import { readPlanFile } from '../cli/terraform-planfile';
import { deriveTokenUuid } from '../constructs/private/acl';
import { reconcileMeshCa } from '../cli/ca';
import { secretsIn } from '../cli/integration';
import { secretVariables } from '../cli/secrets';
import { readSynthOutput } from '../cli/synth';
import { EXAMPLES } from '../examples';
import { SecretStore } from '../index';
import { synth, tempDir } from './support';

const available = terraformAvailability({ offline: true });
if (!available.ok) console.warn(`skipping real Terraform checks: ${available.reason}`);

interface PlannedStack {
  readonly example: string;
  readonly stack: string;
  readonly steps: { readonly step: string; readonly code: number; readonly output: string }[];
  readonly plan?: { resource_changes: { address: string; type: string; change: { actions: string[]; after: any } }[] };
  /** `terraform show -json` of the saved plan, as Terraform printed it. */
  readonly planJson?: string;
  /** The values of the stack's secret variables. */
  readonly secrets?: readonly (readonly [string, string])[];
  /** The saved plan as meshform reads it itself (cli/terraform-planfile.ts), instead of `terraform show -json`. */
  readonly decoded?: PlanJson;
  /** The stack's synthesized Terraform JSON. */
  readonly json?: object;
}

const planned: PlannedStack[] = [];
const initLock = new Lock();
let replication = '';
const outdirs = new Map<string, string>();

describe.skipIf(!available.ok)(
  'every AWS-only stack of every example, with real Terraform (offline, local provider mirror)',
  () => {
    beforeAll(async () => {
      if (!available.ok) return;
      const root = tempDir('meshform-terraform-');
      const store = SecretStore.open({ directory: path.join(root, 'store') });
      const jobs: (() => Promise<PlannedStack>)[] = [];
      for (const example of EXAMPLES) {
        const out = synth(example.define, path.join(root, example.name, 'cdktf.out'));
        outdirs.set(example.name, out.outdir);
        for (const stack of out.stackNames()) {
          const json = out.stack(stack);
          if (stackProviders(json).some((p) => p !== 'aws')) continue;
          const values: { [name: string]: string } = {};
          for (const mesh of readSynthOutput(out.outdir).meshes) {
            const secrets = store.ensure(mesh.mesh).secrets;
            if (mesh.mesh === 'shop') replication = secrets.aclReplicationToken;
            reconcileMeshCa(store, mesh, () => undefined);
            Object.assign(values, secretVariables(store, [mesh]));
          }
          jobs.push(async () => {
            const ws = new StackWorkspace(
              path.join(out.outdir, 'stacks', stack),
              available.env,
              {
                offline: true,
                pluginCache: process.env.TF_PLUGIN_CACHE_DIR ?? path.join(root, 'plugin-cache'),
                environment: variableEnvironment(json, values),
              },
              path.join(root, 'work', example.name),
            );
            const steps: PlannedStack['steps'][number][] = [];
            for (const [step, args] of [
              ['init', ['init', '-no-color', '-input=false']],
              ['validate', ['validate', '-no-color']],
              ['plan', ['plan', '-no-color', '-input=false', '-refresh=false', '-out=plan.tfplan']],
              ['show', ['show', '-json', 'plan.tfplan']],
            ] as const) {
              // init installs into the shared plugin cache, which is not safe for concurrent installs
              const r = await (step === 'init' ? initLock.run(() => ws.run(args)) : ws.run(args));
              steps.push({ step, code: r.code, output: step === 'show' ? '' : `${r.stdout}${r.stderr}` });
              if (r.code !== 0) return { example: example.name, stack, steps };
              if (step === 'show') {
                const secrets = Object.entries(variableEnvironment(json, values)).filter(
                  ([env]) => !env.endsWith('_secrets_version'),
                );
                const decoded = readPlanFile(fs.readFileSync(path.join(ws.dir, 'plan.tfplan')));
                const plan = JSON.parse(r.stdout);
                return { example: example.name, stack, steps, plan, planJson: r.stdout, secrets, decoded, json };
              }
            }
            return { example: example.name, stack, steps };
          });
        }
      }
      // init serially into the shared plugin cache first would be slower; the cache tolerates parallel reads.
      planned.push(...(await pool(jobs, 3)));
    }, 900_000);

    it('finds the AWS-only stacks: the EKS infra and VM stacks, and the own-hosts stack', () => {
      expect(planned.map((p) => `${p.example}/${p.stack}`).sort()).toEqual([
        'default/shop-aws-us-east-infra',
        'default/shop-aws-vms',
        'hybrid/bank-on-premises',
        'hybrid/bank-vms',
      ]);
    });

    it('passes terraform init, validate and an offline plan', () => {
      for (const p of planned) {
        for (const s of p.steps) expect(s.code, `${p.example}/${p.stack} terraform ${s.step}:\n${s.output}`).toBe(0);
        expect(p.plan, `${p.example}/${p.stack}`).toBeDefined();
      }
    });

    it('plans only creations, with the resources each stack should have', () => {
      const count = (stack: string, type: string) =>
        (planned.find((p) => p.stack === stack)!.plan!.resource_changes ?? []).filter((r) => r.type === type).length;
      for (const p of planned) {
        for (const rc of p.plan!.resource_changes ?? []) expect(rc.change.actions, rc.address).toEqual(['create']);
      }
      expect(count('shop-aws-us-east-infra', 'aws_eks_cluster')).toBe(1);
      expect(count('shop-aws-us-east-infra', 'aws_eks_node_group')).toBe(1);
      expect(count('shop-aws-us-east-infra', 'aws_eip')).toBe(6); // 3 for the gateway NLB, 3 for NAT (one per zone)
      expect(count('shop-aws-us-east-infra', 'aws_nat_gateway')).toBe(3);
      expect(count('shop-aws-vms', 'aws_nat_gateway')).toBe(3);
      expect(count('shop-aws-vms', 'aws_instance')).toBe(7);
      expect(count('shop-aws-vms', 'aws_secretsmanager_secret')).toBe(3);
      expect(count('shop-aws-vms', 'aws_lb')).toBe(1);
      expect(count('bank-on-premises', 'aws_instance')).toBe(0);
    });

    it('reads each saved plan itself into the same summary as from `terraform show -json` (the plan file format, hashicorp/terraform v1.11.4 internal/plans/planproto/planfile.proto)', () => {
      for (const p of planned) {
        expect(p.decoded, `${p.example}/${p.stack}`).toBeDefined();
        const summary = summarizeTerraformPlan(p.decoded!, p.json as never);
        expect(JSON.stringify(summary), `${p.example}/${p.stack}`).toBe(
          JSON.stringify(summarizeTerraformPlan(p.plan as never, p.json as never)),
        );
      }
    });

    it('keeps every secret value out of the saved plan: ephemeral variables, write-only arguments', () => {
      for (const p of planned) {
        // a secondary's VM stack holds 7 (no management token); the infra and own-hosts stacks none
        if (p.stack === 'shop-aws-vms') expect(p.secrets!.length).toBe(7);
        expect(secretsIn([p.planJson!], p.secrets!), p.stack).toEqual([]);
      }
      const vms = planned.find((p) => p.stack === 'shop-aws-vms')!.plan!;
      const server = vms.resource_changes.find(
        (r) => r.address === 'aws_secretsmanager_secret_version.SecretValue-server',
      )!;
      // hashicorp/terraform-provider-aws v5.100.0 internal/service/secretsmanager/secret_version.go: write-only
      // secret_string_wo, sent again when secret_string_wo_version changes; Terraform plans it as null
      expect(server.change.after.secret_string_wo).toBeNull();
      expect(server.change.after.secret_string).toBeFalsy();
      expect(Number.isInteger(server.change.after.secret_string_wo_version)).toBe(true);
    });

    it('derives in Terraform the same ACL tokens as the CLI does for own hosts (terraform console)', () => {
      // the derived ids are locals of ephemeral values (never in a plan): evaluate their expression as written
      const stack = JSON.parse(
        fs.readFileSync(path.join(outdirs.get('default')!, 'stacks', 'shop-aws-vms', 'cdk.tf.json'), 'utf8'),
      ) as { locals: { [name: string]: string } };
      const dir = tempDir('meshform-console-');
      for (const [local, label] of [
        ['meshform_secret_agent_aws_vms', 'secret:agent:aws-vms'],
        ['meshform_accessor_mesh_gateway_aws_vms', 'accessor:mesh-gateway:aws-vms'],
        ['meshform_secret_service_aws_vms_db', 'secret:service:aws-vms:db'],
      ]) {
        const expression = stack.locals[local]!.replace(/^\$\{/, '').replace(/\}$/, '');
        const literal = expression.replace(/var\.meshform_shop_acl_replication_token/g, JSON.stringify(replication));
        const r = spawnSync('terraform', ['console'], { cwd: dir, input: `${literal}\n`, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout.trim()), local).toBe(deriveTokenUuid(replication, label));
      }
    });

    it('sends hosts exactly the cloud-init meshform rendered (template escaping round-trips)', () => {
      const vms = planned.find((p) => p.stack === 'shop-aws-vms')!.plan!;
      for (const [instance, group] of [
        ['aws_instance.server-0', 'server'],
        ['aws_instance.mesh-gateway-0', 'mesh-gateway'],
        ['aws_instance.service-db-1', 'service-db'],
      ]) {
        const planned = vms.resource_changes.find((r) => r.address === instance)!;
        const decoded = gunzipSync(Buffer.from(planned.change.after.user_data_base64 as string, 'base64')).toString(
          'utf8',
        );
        const written = fs.readFileSync(
          path.join(outdirs.get('default')!, 'stacks', 'shop-aws-vms', 'hosts', group, 'cloud-init.yaml'),
          'utf8',
        );
        expect(decoded, instance).toBe(written);
      }
      const gateway = fs.readFileSync(
        path.join(outdirs.get('default')!, 'stacks', 'shop-aws-vms', 'hosts', 'mesh-gateway', 'cloud-init.yaml'),
        'utf8',
      );
      // systemd's own ${...} survives Terraform, and the gateway registers the declared address
      expect(gateway).toContain('-address ${PRIVATE_IP}:8443 -wan-address mgw.aws-vms.shop.example.com:443');
    });
  },
);

describe('terraformError', () => {
  // GIVEN what Terraform prints on stderr for two failed resources (-no-color keeps its boxes)
  const output = [
    '╷',
    '│ Error: creating EC2 EIP: operation error EC2: AllocateAddress, StatusCode: 400',
    '│ ',
    '│   with aws_eip.NatAddress,',
    '│   on cdk.tf.json line 120, in resource "aws_eip" "NatAddress":',
    '│  120:       },',
    '╵',
    '╷',
    '│ Error: creating IAM Role (shop-server): operation error IAM: CreateRole, StatusCode: 400',
    '│ ',
    '╵',
  ].join('\n');

  it('gives each error with the resource it names, on one line, without the boxes', () => {
    expect(terraformError(output)).toBe(
      'Error: creating EC2 EIP: operation error EC2: AllocateAddress, StatusCode: 400 with aws_eip.NatAddress, ' +
        'Error: creating IAM Role (shop-server): operation error IAM: CreateRole, StatusCode: 400',
    );
  });

  it('gives at most the number of errors asked for', () => {
    expect(terraformError(output, 1)).toBe(
      'Error: creating EC2 EIP: operation error EC2: AllocateAddress, StatusCode: 400 with aws_eip.NatAddress,',
    );
  });

  it('gives the last lines where Terraform printed no error', () => {
    expect(terraformError('Initializing...\n\nsomething\nwent\nwrong\n')).toBe('something went wrong');
  });
});
