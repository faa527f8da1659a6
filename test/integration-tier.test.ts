import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signV4, taggedResources } from '../constructs/private/aws-sigv4';
import {
  destroyQuirks,
  detectEmulator,
  EmulatorProfile,
  MOTO,
  quirkOverride,
  unsupportedResources,
} from '../cli/emulators';
import {
  awsStateResources,
  goneAddresses,
  renderIntegration,
  runIntegration,
  secretsIn,
  untrackedArns,
} from '../cli/integration';
import { findProviderMirror, StackWorkspace, terraformAvailability } from '../cli/terraform';
import { AWS_SERVICES } from '../constructs/private/aws';
import { App, TerraformStack } from '../constructs/private/engine';
import { defineDefaultMesh } from '../examples/default/main';
import {
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  MeshformAws,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../index';
import { REPO, synth, tempDir, thrownMessage } from './support';

const terraform = terraformAvailability({ offline: true });
if (!terraform.ok) console.warn(`skipping integration-tier runs with real Terraform: ${terraform.reason}`);

/** GIVEN helper: an EKS primary and an EC2 VM datacenter, with `aws` as the mesh's AWS setting. */
function awsMesh(aws?: MeshformAws) {
  return (app: App) => {
    const mesh = new Mesh(app, 'shop', aws ? { aws } : {});
    new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16' }),
      meshGateway: { address: 'mgw.east.example.com' },
    });
    new VmDatacenter(mesh, 'vms', {
      hosts: VmHosts.onAws({
        region: 'us-east-1',
        network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
        machineImage: MachineImage.fromId('ami-0123456789abcdef0'),
      }),
    });
  };
}

/** Every stack's JSON without its provider blocks. */
function withoutProviders(out: ReturnType<typeof synth>): { [stack: string]: unknown } {
  return Object.fromEntries(
    out.stackNames().map((name) => {
      const { provider: _provider, ...rest } = out.stack(name) as { provider?: unknown };
      return [name, rest];
    }),
  );
}

afterEach(() => {
  delete process.env.MESHFORM_AWS_ENDPOINT;
});

describe('endpoint mode', () => {
  const endpoint = 'http://localhost:4566';

  it('points every AWS provider at the endpoint, with the skips an emulator needs, and changes nothing else', () => {
    const standard = synth(awsMesh());
    const emulated = synth(awsMesh(MeshformAws.endpoint(endpoint)));
    const awsStacks = emulated.stackNames().filter((s) => emulated.stack(s).provider?.aws);
    expect(awsStacks.sort()).toEqual(['shop-east', 'shop-east-config', 'shop-east-infra', 'shop-vms']);
    for (const name of awsStacks) {
      const [provider] = emulated.stack(name).provider!.aws as { [key: string]: unknown }[];
      expect(provider).toEqual({
        ...(standard.stack(name).provider!.aws as object[])[0],
        endpoints: [Object.fromEntries(AWS_SERVICES.map((s) => [s, endpoint]))],
        skip_credentials_validation: true,
        skip_metadata_api_check: 'true',
        skip_region_validation: true,
        s3_use_path_style: true,
      });
    }
    expect(withoutProviders(emulated)).toEqual(withoutProviders(standard));
    // the other providers are untouched
    expect(emulated.stack('shop-east').provider!.kubernetes).toEqual(standard.stack('shop-east').provider!.kubernetes);
  });

  // hashicorp/terraform-provider-aws internal/service/ec2/vpc_security_group_ingress_rule.go
  // (flattenReferencedSecurityGroup): a rule's referenced group reads back as "<UserId>/<sg-id>" unless its UserId
  // is the provider's own account id; with skip_requesting_account_id that id is empty, so every rule between two
  // groups meshform creates drifts after apply (seen against moto). The account id is asked of the endpoint's STS.
  it('asks the endpoint for the account id (the provider compares security-group owner ids with it)', () => {
    const emulated = synth(awsMesh(MeshformAws.endpoint(endpoint)));
    for (const name of ['shop-east-infra', 'shop-vms']) {
      const [provider] = emulated.stack(name).provider!.aws as { [key: string]: unknown }[];
      expect(provider).not.toHaveProperty('skip_requesting_account_id');
      expect(provider).toMatchObject({ endpoints: [expect.objectContaining({ sts: endpoint })] });
    }
  });

  it('reads MESHFORM_AWS_ENDPOINT by default, and is off without it', () => {
    const off = synth(defineDefaultMesh);
    expect(JSON.stringify(off.stack('shop-aws-vms').provider)).not.toContain('endpoints');
    process.env.MESHFORM_AWS_ENDPOINT = endpoint;
    const on = synth(defineDefaultMesh);
    expect((on.stack('shop-aws-vms').provider!.aws as { endpoints: object[] }[])[0]!.endpoints).toEqual([
      Object.fromEntries(AWS_SERVICES.map((s) => [s, endpoint])),
    ]);
  });

  it('refuses an endpoint that is not an http(s) URL', () => {
    expect(thrownMessage(() => synth(awsMesh(MeshformAws.endpoint('localhost:4566'))))).toBe(
      '[shop] AWS endpoint is not valid: "localhost:4566". Fix: give an http(s) URL without a path, e.g. "http://localhost:4566"',
    );
  });

  it.skipIf(!terraform.ok)(
    'gives stacks the real AWS provider accepts (init and validate, from the local mirror)',
    async () => {
      const out = synth(awsMesh(MeshformAws.endpoint(endpoint)));
      const env = terraform.ok ? terraform.env : (undefined as never);
      await Promise.all(
        ['shop-east-infra', 'shop-vms'].map(async (name) => {
          const ws = new StackWorkspace(
            path.join(out.outdir, 'stacks', name),
            env,
            { offline: true, keepProviders: true },
            tempDir('meshform-validate-'),
          );
          expect((await ws.run(['init', '-input=false', '-no-color'])).code).toBe(0);
          const validate = await ws.run(['validate', '-no-color']);
          expect(validate.code, validate.stdout + validate.stderr).toBe(0);
        }),
      );
    },
  );
});

describe('npm run test:integration', () => {
  const script = (env: NodeJS.ProcessEnv) =>
    spawnSync(
      process.execPath,
      [path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(REPO, 'scripts', 'integration.ts')],
      {
        encoding: 'utf8',
        env: { ...process.env, MESHFORM_AWS_ENDPOINT: '', ...env },
      },
    );

  it('skips with the reason and exits 0 when no endpoint is configured', () => {
    const run = script({});
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(
      'integration tier skipped: no AWS-compatible endpoint configured. Set MESHFORM_AWS_ENDPOINT',
    );
  });

  it('fails when an endpoint is configured but does not answer', () => {
    const run = script({ MESHFORM_AWS_ENDPOINT: 'http://127.0.0.1:9' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'integration tier: MESHFORM_AWS_ENDPOINT is set but http://127.0.0.1:9 does not answer',
    );
  });
});

/**
 * A stand-in for the endpoint's Resource Groups Tagging API: checks the request is signed, answers `left` (a
 * resource with `from` only from that call on, counting from 0: made by the stack's apply).
 */
async function taggingEndpoint(left: { arn: string; tags: { [k: string]: string }; from?: number }[]) {
  const seen: { target?: string; authorization?: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ target: req.headers['x-amz-target'] as string, authorization: req.headers.authorization, body });
      const filters = (JSON.parse(body) as { TagFilters: { Key: string; Values: string[] }[] }).TagFilters;
      const call = seen.length - 1;
      const matching = left.filter(
        (r) => (r.from ?? 0) <= call && filters.every((f) => f.Values.includes(r.tags[f.Key]!)),
      );
      res.setHeader('Content-Type', 'application/x-amz-json-1.1');
      res.end(
        JSON.stringify({
          ResourceTagMappingList: matching.map((r) => ({
            ResourceARN: r.arn,
            Tags: Object.entries(r.tags).map(([Key, Value]) => ({ Key, Value })),
          })),
          PaginationToken: '',
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
}

describe('the tier itself, with real Terraform (terraform_data resources, a stand-in tagging endpoint)', () => {
  /** Stacks whose AWS provider is configured (default tags, emulator skips) but whose resources need no cloud. */
  function stacks(
    define: (stack: TerraformStack, name: string) => void,
    names: string[],
  ): { dir: string; names: string[] } {
    const outdir = path.join(tempDir(), 'cdktf.out');
    const app = new App({ outdir, stackTraces: false });
    for (const name of names) {
      const stack = new TerraformStack(app, name);
      stack.addOverride('provider.aws', [
        {
          region: 'us-east-1',
          default_tags: [{ tags: { 'meshform:mesh': 'lab', 'meshform:datacenter': name } }],
          skip_credentials_validation: true,
          skip_requesting_account_id: true,
          skip_metadata_api_check: 'true',
          skip_region_validation: true,
        },
      ]);
      stack.addOverride('terraform.required_providers.aws', { source: 'hashicorp/aws', version: '5.100.0' });
      define(stack, name);
    }
    app.synth();
    return { dir: outdir, names };
  }

  /** WHEN helper: the tier over `names` of `dir`, against the stand-in tagging endpoint at `url`. */
  const runTier = (
    dir: string,
    names: string[],
    url: string,
    options: { secondApply: boolean; parallelism: number; workRoot?: string; emulator?: EmulatorProfile },
  ) =>
    runIntegration(
      names.map((stack) => ({ group: 'lab', stack, dir: path.join(dir, 'stacks', stack), variables: {} })),
      {
        env: env(),
        workRoot: options.workRoot ?? tempDir('meshform-integration-'),
        parallelism: options.parallelism,
        secondApply: options.secondApply,
        ...(options.emulator ? { emulator: options.emulator } : {}),
        leftovers: async (tags, region) =>
          (
            await taggedResources(tags, {
              region,
              endpoint: url,
              credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
            })
          ).map((r) => r.arn),
      },
    );

  const env = () => {
    const mirror = findProviderMirror();
    return { ...(terraform.ok ? terraform.env : (undefined as never)), ...(mirror ? { mirror } : {}) };
  };

  it.skipIf(!terraform.ok)(
    'applies, re-plans empty, applies again without change, destroys and finds nothing left; filters a listed emulator quirk; where the emulator lacks an API, applies the rest and validates and plans the whole stack',
    async () => {
      // GIVEN two stacks; the first also holds a resource that drifts on every read, which the emulator's profile
      // lists as a quirk; the second holds an EKS add-on, whose API moto lacks
      const { dir, names } = stacks(
        (stack, name) => {
          stack.addOverride('resource.terraform_data.marker', { input: `${name}-v1` });
          if (name === 'one')
            stack.addOverride('resource.terraform_data.stamp', { input: 'quirk', triggers_replace: '${timestamp()}' });
          if (name === 'two')
            stack.addOverride('resource.aws_eks_addon.dns', { cluster_name: 'lab', addon_name: 'coredns' });
        },
        ['one', 'two'],
      );
      const emulator: EmulatorProfile = {
        ...MOTO,
        quirks: [
          ...MOTO.quirks,
          {
            resourceType: 'terraform_data',
            attribute: 'triggers_replace',
            applies: (config) => config.input === 'quirk',
            evidence: 'the stand-in stamps every read',
          },
        ],
      };
      const endpoint = await taggingEndpoint([
        {
          arn: 'arn:aws:ec2:us-east-1:000000000000:vpc/vpc-other',
          tags: { 'meshform:mesh': 'other', 'meshform:datacenter': 'one' },
        },
      ]);
      try {
        // WHEN the tier runs them against moto's profile
        const work = tempDir('meshform-integration-');
        const outcomes = await runTier(dir, names, endpoint.url, {
          secondApply: true,
          parallelism: 2,
          workRoot: work,
          emulator,
        });
        // THEN
        expect(outcomes.map((o) => `${o.stack} ${o.ok} ${o.steps.map((s) => `${s.step}:${s.ok}`).join(',')}`)).toEqual([
          'one true init:true,apply:true,plan after apply:true,second apply:true,destroy:true,nothing left (by tags):true',
          'two true init:true,validate + plan (whole stack, 2 resources):true,apply (1 of 2 resources):true,plan after apply:true,second apply:true,destroy:true,nothing left (by tags):true',
        ]);
        // the listed quirk is ignored on that resource only (the unlisted drift test below fails), and reported
        expect(outcomes[0]!.filtered).toEqual([
          {
            address: 'terraform_data.stamp',
            attribute: 'triggers_replace',
            evidence: 'the stand-in stamps every read',
          },
        ]);
        expect(outcomes[0]!.notApplied).toEqual([]);
        expect(outcomes[1]!.filtered).toEqual([]);
        expect(outcomes[1]!.notApplied).toEqual([
          { address: 'aws_eks_addon.dns', reason: expect.stringContaining('moto lacks EKS CreateAddon') },
        ]);
        const report = renderIntegration(outcomes, emulator);
        expect(report).toContain('     emulator quirks filtered (ignore_changes): terraform_data.triggers_replace\n');
        expect(report).toContain('  - terraform_data.triggers_replace: the stand-in stamps every read\n');
        expect(report).toContain(
          '     not applied (the emulator lacks their API; validated and planned with the whole stack): aws_eks_addon',
        );
        expect(report).toContain(
          '  - aws_eks_addon: lacks EKS CreateAddon/DescribeAddon/DeleteAddon. moto/eks/urls.py',
        );
        expect(report).toContain(
          '2 stacks applied, re-planned empty and destroyed (1 in part: the resources the emulator cannot create were validated and planned, not applied)',
        );
        // each stack lists its tagged resources before apply and after destroy
        expect(endpoint.seen.map((s) => s.target)).toEqual(
          Array(4).fill('ResourceGroupsTaggingAPI_20170126.GetResources'),
        );
        expect(endpoint.seen[0]!.authorization).toMatch(
          /^AWS4-HMAC-SHA256 Credential=test\/\d{8}\/us-east-1\/tagging\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/,
        );
        // a stack that passed leaves no working copy behind
        expect(fs.readdirSync(path.join(work, 'lab'))).toEqual([]);
      } finally {
        endpoint.close();
      }
    },
    // a guard, not an assertion on speed: two stacks of up to eight Terraform runs each on a shared machine
    600_000,
  );

  it.skipIf(!terraform.ok)(
    'fails a stack whose plan after apply is not empty (a perpetual diff), destroys it anyway and keeps its logs',
    async () => {
      const { dir } = stacks(
        (stack) => stack.addOverride('resource.terraform_data.stamp', { triggers_replace: '${timestamp()}' }),
        ['drift'],
      );
      const endpoint = await taggingEndpoint([]);
      try {
        const [outcome] = await runTier(dir, ['drift'], endpoint.url, { secondApply: false, parallelism: 1 });
        expect(outcome!.ok).toBe(false);
        expect(outcome!.failure).toBe(
          'the plan right after apply is not empty (perpetual diff): terraform_data.stamp must be replaced',
        );
        expect(outcome!.steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
          'init:true',
          'apply:true',
          'plan after apply:false',
          'destroy:true',
          'nothing left (by tags):true',
        ]);
        expect(fs.readFileSync(outcome!.logs!, 'utf8')).toContain(
          '$ terraform plan -input=false -no-color -detailed-exitcode',
        );
      } finally {
        endpoint.close();
      }
    },
  );

  it.skipIf(!terraform.ok)(
    'fails a stack whose destroy fails, destroys it again to clean up, and fails a stack that leaves tagged resources behind (what carried its tags before apply aside)',
    async () => {
      // GIVEN a stack whose first destroy fails (a destroy-time command that fails once), and an endpoint where a
      // resource carrying the stack's tags appears with the apply and stays
      const { dir } = stacks(
        (stack) => {
          stack.addOverride('resource.terraform_data.marker', { input: 'x' });
          stack.addOverride('resource.terraform_data.marker.provisioner', [
            {
              'local-exec': {
                when: 'destroy',
                command: 'if [ -e destroyed-once ]; then exit 0; fi; touch destroyed-once; exit 1',
              },
            },
          ]);
        },
        ['leaky'],
      );
      const tags = { 'meshform:mesh': 'lab', 'meshform:datacenter': 'leaky' };
      const endpoint = await taggingEndpoint([
        { arn: 'arn:aws:ec2:us-east-1:000000000000:instance/i-earlier', tags },
        { arn: 'arn:aws:ec2:us-east-1:000000000000:security-group/sg-1', tags, from: 1 },
      ]);
      try {
        // WHEN
        const [outcome] = await runTier(dir, ['leaky'], endpoint.url, { secondApply: false, parallelism: 1 });
        // THEN the failed destroy fails the stack; the second one cleans up, then the leftover is found
        expect(outcome!.failure).toMatch(/^Error: local-exec provisioner error with terraform_data\.marker/);
        expect(outcome!.steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
          'init:true',
          'apply:true',
          'plan after apply:true',
          'destroy:false',
          'destroy again (cleanup):true',
          'nothing left (by tags):false',
        ]);
        expect(outcome!.steps.at(-1)!.note).toBe(
          '1 resource tagged meshform:datacenter=leaky, meshform:mesh=lab left after destroy: arn:aws:ec2:us-east-1:000000000000:security-group/sg-1',
        );
      } finally {
        endpoint.close();
      }
    },
  );
});

describe('leftovers and emulator differences (no Terraform)', () => {
  const state = JSON.stringify({
    version: 4,
    resources: [
      {
        mode: 'managed',
        type: 'aws_instance',
        name: 'server',
        provider: 'provider["registry.terraform.io/hashicorp/aws"]',
        instances: [
          { index_key: 0, attributes: { id: 'i-0a', arn: 'arn:aws:ec2:us-east-1:123456789012:instance/i-0a' } },
        ],
      },
      {
        mode: 'managed',
        type: 'aws_iam_role',
        name: 'node',
        provider: 'provider["registry.terraform.io/hashicorp/aws"]',
        instances: [{ attributes: { id: 'lab-node', arn: 'arn:aws:iam::123456789012:role/lab-node' } }],
      },
      {
        mode: 'data',
        type: 'aws_ami',
        name: 'debian',
        provider: 'provider["registry.terraform.io/hashicorp/aws"]',
        instances: [{ attributes: { id: 'ami-1' } }],
      },
      {
        mode: 'managed',
        type: 'terraform_data',
        name: 'marker',
        provider: 'provider["terraform.io/builtin/terraform"]',
        instances: [{ attributes: { id: 'x' } }],
      },
    ],
  });

  it("lists the AWS provider's managed resources of a state, by address and ids", () => {
    expect(awsStateResources(state)).toEqual([
      { address: 'aws_instance.server[0]', id: 'i-0a', arn: 'arn:aws:ec2:us-east-1:123456789012:instance/i-0a' },
      { address: 'aws_iam_role.node', id: 'lab-node', arn: 'arn:aws:iam::123456789012:role/lab-node' },
    ]);
  });

  it('reads what a refresh-only JSON plan reports deleted (lines as Terraform 1.11 prints them against moto)', () => {
    const drift = (addr: string, action: string) =>
      JSON.stringify({
        '@level': 'info',
        '@message': `${addr}: Drift detected (${action})`,
        '@module': 'terraform.ui',
        change: { resource: { addr, module: '', resource: addr, implied_provider: 'aws' }, action },
        type: 'resource_drift',
      });
    const output = [
      JSON.stringify({ '@level': 'info', '@message': 'Terraform 1.11.4', type: 'version' }),
      drift('aws_iam_role.node', 'delete'),
      drift('aws_eip.gateway', 'update'),
      '',
    ].join('\n');
    expect([...goneAddresses(output)]).toEqual(['aws_iam_role.node']);
  });

  it("counts as left behind only the tagged ARNs that are none of the stack's own resources", () => {
    const own = awsStateResources(state);
    expect(
      untrackedArns(
        [
          'arn:aws:ec2:us-east-1:123456789012:instance/i-0a', // own (terminated, judged by the refresh)
          'arn:aws:iam::123456789012:role/lab-node', // own, by ARN
          'arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1', // made on the stack's behalf
        ],
        own,
      ),
    ).toEqual(['arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1']);
  });

  const stackJson = {
    resource: {
      aws_eks_cluster: { lab: { name: 'lab', access_config: { authentication_mode: 'API' } } },
      aws_eks_addon: { dns: { cluster_name: '${aws_eks_cluster.lab.name}', addon_name: 'coredns' } },
      aws_eks_pod_identity_association: { csi: { cluster_name: 'lab', depends_on: [] } },
      terraform_data: {
        after: { input: '${aws_eks_addon.dns.arn}' },
        waits: { depends_on: ['terraform_data.after'] },
        free: { input: '${aws_eks_cluster.lab.arn}' },
      },
      aws_instance: {
        private: { subnet_id: 'subnet-1', associate_public_ip_address: false, lifecycle: { ignore_changes: ['ami'] } },
        public: { subnet_id: 'subnet-1', associate_public_ip_address: true },
        plain: { subnet_id: 'subnet-1' },
        frozen: { subnet_id: 'subnet-1', associate_public_ip_address: false, lifecycle: { ignore_changes: 'all' } },
      },
      aws_vpc_security_group_ingress_rule: {
        group: { referenced_security_group_id: '${aws_security_group.a.id}', description: 'from a' },
        cidr: { cidr_ipv4: '10.0.0.0/8', description: 'from the VPC' },
      },
    },
  };

  it('leaves out what moto cannot create (moto/eks/urls.py has no add-on or pod identity routes) and what depends on it', () => {
    expect(unsupportedResources(stackJson, MOTO)).toEqual([
      {
        address: 'aws_eks_addon.dns',
        reason: expect.stringMatching(/^moto lacks EKS CreateAddon\/DescribeAddon\/DeleteAddon \(moto\/eks\/urls\.py/),
      },
      {
        address: 'aws_eks_pod_identity_association.csi',
        reason: expect.stringMatching(/^moto lacks EKS CreatePodIdentityAssociation\/.* \(moto\/eks\/urls\.py/),
      },
      { address: 'terraform_data.after', reason: 'depends on aws_eks_addon.dns, which moto cannot create' },
      { address: 'terraform_data.waits', reason: 'depends on terraform_data.after, which moto cannot create' },
    ]);
    expect(unsupportedResources(stackJson, undefined)).toEqual([]);
  });

  it("ignores moto's quirks only on the resources whose configuration shows them, keeping the stack's own ignore_changes", () => {
    const { override, filtered } = quirkOverride(stackJson, MOTO);
    expect(override).toEqual({
      resource: {
        aws_eks_cluster: { lab: { lifecycle: { ignore_changes: ['access_config'] } } },
        aws_instance: {
          private: { lifecycle: { ignore_changes: ['ami', 'associate_public_ip_address', 'vpc_security_group_ids'] } },
          public: { lifecycle: { ignore_changes: ['vpc_security_group_ids'] } },
        },
        aws_vpc_security_group_ingress_rule: { group: { lifecycle: { ignore_changes: ['description'] } } },
      },
    });
    expect(filtered.map((f) => `${f.address}.${f.attribute}`)).toEqual([
      'aws_eks_cluster.lab.access_config',
      'aws_instance.private.associate_public_ip_address',
      'aws_instance.private.vpc_security_group_ids',
      'aws_instance.public.vpc_security_group_ids',
      'aws_vpc_security_group_ingress_rule.group.description',
    ]);
    expect(filtered.every((f) => f.evidence.includes('moto/'))).toBe(true);
    expect(quirkOverride(stackJson, undefined)).toEqual({ filtered: [] });
  });

  // the error as Terraform 1.11 printed it (-no-color) when moto answered a revoke of a rule its group no longer held
  const revokeNotFound = (rule: string) =>
    `\nError: deleting VPC Security Group Rule (${rule})\n\noperation error EC2: RevokeSecurityGroupIngress, https response error\n` +
    'StatusCode: 400, RequestID:\nP5Abw2skEEI31l74IqzYaK06qItYrbHdG2ZQpEWQrHeMCOPNbWQN, api error\n' +
    'InvalidPermission.NotFound: The specified rule does not exist in this\nsecurity group\n\n';

  it("destroys once more only when every error of a failed destroy is one of moto's listed destroy quirks", () => {
    expect(
      destroyQuirks(revokeNotFound('sgr-d33e1f9062c4b241f') + revokeNotFound('sgr-8670c8dcc7cbca8a5'), MOTO),
    ).toEqual(MOTO.destroyQuirks);
    const outcome = {
      group: 'default',
      stack: 'shop-aws-vms',
      ok: true,
      steps: [
        {
          step: 'destroy',
          ok: false,
          seconds: 1,
          note: 'Error: deleting VPC Security Group Rule (sgr-d33e1f9062c4b241f)',
        },
        { step: 'destroy again (emulator quirk)', ok: true, seconds: 1 },
      ],
      notApplied: [],
      filtered: [],
      destroyRetried: MOTO.destroyQuirks,
    };
    const report = renderIntegration([outcome], MOTO);
    expect(report).toContain(
      "     destroyed once more: the first destroy failed only with the emulator's destroy quirk of aws_vpc_security_group_ingress_rule, aws_vpc_security_group_egress_rule\n",
    );
    expect(report).toContain(
      '  - destroying aws_vpc_security_group_ingress_rule, aws_vpc_security_group_egress_rule: moto/ec2/models/security_groups.py',
    );
    expect(report).toContain('1 stack applied, re-planned empty and destroyed\n');
    // another error alongside: the stack fails
    expect(
      destroyQuirks(
        revokeNotFound('sgr-d33e1f9062c4b241f') +
          '\nError: deleting EC2 VPC (vpc-1): DependencyViolation: has dependencies\n',
        MOTO,
      ),
    ).toBeUndefined();
    // the same error from an emulator without that quirk, or no error at all
    expect(destroyQuirks(revokeNotFound('sgr-d33e1f9062c4b241f'), undefined)).toBeUndefined();
    expect(destroyQuirks('Destroy complete! Resources: 0 destroyed.\n', MOTO)).toBeUndefined();
  });

  it('recognises moto by its /moto-api/config answer (moto/moto_api/_internal/urls.py), and nothing else', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/moto-api/config') {
        res.setHeader('Content-Type', 'application/json');
        res.end('{"batch": {"use_docker": true}}');
      } else {
        res.statusCode = 404;
        res.end('<html>not found</html>');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const other = http.createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const url = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
      expect((await detectEmulator(url(server)))?.name).toBe('moto');
      expect(await detectEmulator(url(other))).toBeUndefined();
      expect(await detectEmulator('http://127.0.0.1:9')).toBeUndefined();
    } finally {
      server.close();
      other.close();
    }
  });
});

describe('AWS Signature Version 4', () => {
  it('signs as the AWS documentation example does', () => {
    const headers = signV4(
      {
        method: 'GET',
        url: 'https://examplebucket.s3.amazonaws.com/test.txt',
        headers: {
          Range: 'bytes=0-9',
          'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        },
        body: '',
      },
      { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      'us-east-1',
      's3',
      new Date(Date.UTC(2013, 4, 24)),
    );
    expect(headers.Authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });
});

describe('secretsIn (the no-secret-in-state step)', () => {
  it('finds a secret whole, JSON-escaped, or by a long line of a PEM re-wrapped in a document, and names its variable', () => {
    // GIVEN a token, a PEM and a short value, and a state that holds the PEM's lines inside a JSON string
    const pem = `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(64)}\n${'B'.repeat(20)}\n-----END PRIVATE KEY-----\n`;
    const secrets = [
      ['TF_VAR_token', '0b7c6c1e-9e7e-4a3e-8f0b-4f1c2d3e4f50'],
      ['TF_VAR_key', pem],
    ] as const;
    const state = JSON.stringify({ attributes: { doc: `{"key": ${JSON.stringify(`x\n${'A'.repeat(64)}\ny`)}}` } });
    // THEN the PEM is found by its long line inside the document (escaped twice over), the token whole
    expect(secretsIn([state], secrets)).toEqual(['key']);
    expect(secretsIn(['… "0b7c6c1e-9e7e-4a3e-8f0b-4f1c2d3e4f50" …'], secrets)).toEqual(['token']);
    expect(secretsIn([JSON.stringify(pem)], secrets)).toEqual(['key']);
    expect(secretsIn(['nothing here'], secrets)).toEqual([]);
  });
});
