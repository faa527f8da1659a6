import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import Ajv from 'ajv';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readAppliedRecord } from '../cli/applied';
import { evaluateGates, GATE_IDS, RECORD_GATES } from '../cli/gates';
import { planProject as planDocument, type PlanDocument } from '../cli/plan';
import { renderPlanMarkdown } from '../cli/plan-markdown';
import { nextStep, renderPlanText } from '../cli/plan-render';
import { summarizeTerraformPlan } from '../cli/terraform-plan';
import { diffMesh } from '../constructs/private/mesh-diff';
import { APPLIED_OUTPUT, MeshManifest } from '../constructs/private/mesh-manifest';
import { planProject } from './plan-support';
import { CertificateAuthority, KubernetesCluster, KubernetesDatacenter, Mesh, SecretStore, Service } from '../index';
import { readOutput, REPO, runAsync, synth, tempDir } from './support';

afterEach(() => vi.restoreAllMocks());

const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'docs', 'plan.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);

/** WHEN helper: `meshform plan --json --no-terraform`, checked against the documented schema. */
async function jsonPlan(project: ReturnType<typeof planProject>, ...args: string[]): Promise<PlanDocument> {
  const { code, stdout } = await project.plan('--json', '--no-terraform', ...args);
  const plan = JSON.parse(stdout) as PlanDocument;
  expect(validate(plan), JSON.stringify(validate.errors)).toBe(true);
  expect(code).toBe(plan.exitCode);
  return plan;
}

/** GIVEN helper: a project planned and applied once with `applied`, then changed to `next`. */
async function appliedThenChanged(applied: Parameters<typeof planProject>[0], next: Parameters<typeof planProject>[0]) {
  const p = planProject(applied);
  await p.plan('--json', '--no-terraform');
  p.markApplied();
  p.set(next!);
  return p;
}

/** GIVEN helper: a project that applied root-1 everywhere, with root-2 created in its store. */
async function rootOneAppliedRootTwoCreated() {
  const p = planProject();
  await jsonPlan(p);
  p.markApplied();
  SecretStore.open({ directory: p.store })
    .ca('shop')
    .createRoot('root-2', { keyAlgorithm: 'ec-p256', validityDays: 3650 });
  return p;
}

function gateIds(plan: PlanDocument): string[] {
  return plan.meshes.flatMap((m) => m.gates.map((g) => `${g.id}${g.acknowledged ? ' (acknowledged)' : ''}`));
}

describe('meshform plan: the change in mesh terms', () => {
  it('shows everything to create when nothing was applied, and writes the picture', async () => {
    const p = planProject({ services: [{ name: 'web', port: 8080, datacenters: ['east', 'west'] }] });
    const plan = await jsonPlan(p);
    const mesh = plan.meshes[0]!;
    expect(mesh.comparedWith).toBe('nothing');
    expect(mesh.changes.map((c) => `${c.action} ${c.kind}: ${c.summary}`)).toEqual([
      'create mesh: mesh shop: Consul 2.0.3, primary east',
      'create datacenter: datacenter east: kubernetes on other, 3 servers, gateway mgw.east.example.com:443',
      'create datacenter: datacenter west: kubernetes on other, 3 servers',
      'create federation: federation west → east via mgw.east.example.com:443',
      'create ca: agent TLS: root root-1, one intermediate per datacenter',
      'create ca: service mesh CA: consul',
      'create service: service web: tcp:8080 in east, west',
    ]);
    expect(mesh.applied).toEqual([
      { stack: 'shop-east', datacenter: 'east', source: 'none', detail: 'never applied (no state file)' },
      { stack: 'shop-west', datacenter: 'west', source: 'none', detail: 'never applied (no state file)' },
    ]);
    expect(mesh.certificates).toContain('issued intermediate east (root-1)');
    expect(plan.exitCode).toBe(0);
    expect(plan.stacks.map((s) => `${s.stack}: ${s.status} (${s.reason})`)).toEqual([
      'shop-east: skipped (Terraform skipped (--no-terraform))',
      'shop-east-config: skipped (Terraform skipped (--no-terraform))',
      'shop-west: skipped (Terraform skipped (--no-terraform))',
    ]);
    expect(plan.terraform).toEqual({ available: false, reason: 'skipped (--no-terraform)' });
    const svg = path.join(p.dir, mesh.picture);
    expect(mesh.picture).toBe(path.join('cdktf.out', 'meshform', 'plan', 'shop.svg'));
    execFileSync('python3', ['-c', 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])', svg]);
    const text = fs.readFileSync(svg, 'utf8');
    expect(text).toContain('<g id="dc-east" data-change="added">');
    expect(text).toContain('mesh shop — Consul 2.0.3 (nothing applied yet)');
  });

  it('compares with what each datacenter recorded in its state: no change after an apply', async () => {
    const p = planProject();
    await jsonPlan(p);
    p.markApplied();
    const plan = await jsonPlan(p);
    expect(plan.meshes[0]!.comparedWith).toBe('applied');
    expect(plan.meshes[0]!.applied.map((a) => `${a.stack}: ${a.source}`)).toEqual([
      'shop-east: state-file',
      'shop-west: state-file',
    ]);
    expect(plan.meshes[0]!.changes).toEqual([]);
    expect(plan.exitCode).toBe(0);
  });

  it('shows a datacenter that never applied as to create, next to those that did', async () => {
    const p = planProject({ datacenters: ['east', 'west'] });
    await jsonPlan(p);
    p.markApplied(['shop-east', 'shop-west']);
    p.set({ datacenters: ['east', 'west', 'north'], services: [{ name: 'api', port: 9090, datacenters: ['north'] }] });
    const plan = await jsonPlan(p);
    expect(plan.meshes[0]!.comparedWith).toBe('partly-applied');
    expect(plan.meshes[0]!.changes.map((c) => c.summary)).toEqual([
      'datacenter north: kubernetes on other, 3 servers',
      'federation north → east via mgw.east.example.com:443',
      'service api: tcp:9090 in north',
    ]);
    const svg = fs.readFileSync(path.join(p.dir, plan.meshes[0]!.picture), 'utf8');
    expect(svg).toContain('<g id="dc-north" data-change="added">');
    expect(svg).toContain('<g id="dc-east" data-change="unchanged">');
  });
});

describe('the baseline is what was applied, never a synthesis', () => {
  it('fails closed while a state cannot be read: re-running plan (or synth) never silences a gate', async () => {
    // GIVEN a mesh whose states are in S3, which this plan cannot read (Terraform is not run)
    const p = planProject({ backend: 's3' });
    const first = await jsonPlan(p);
    expect(first.exitCode).toBe(1);
    expect(first.meshes[0]!.applied.map((a) => `${a.datacenter}: ${a.source} (${a.detail})`)).toEqual([
      'east: unavailable (its s3 state is read with terraform, which does not run here)',
      'west: unavailable (its s3 state is read with terraform, which does not run here)',
    ]);
    // WHEN the primary's gateway moves and west drops to one server, and plan (and synth) run again and again
    p.set({ backend: 's3', eastGateway: 'mgw-new.east.example.com', westServers: 1 });
    await runAsync(['synth', '--project', p.dir, '--secrets-dir', p.store]);
    const second = await jsonPlan(p);
    const third = await jsonPlan(p);
    // THEN every run fails closed: the gates that compare with what was applied cannot be evaluated
    for (const plan of [second, third]) {
      expect(plan.exitCode).toBe(1);
      expect(plan.meshes[0]!.comparedWith).toBe('unreadable');
      expect(plan.meshes[0]!.gates.filter((g) => g.status === 'cannot-evaluate').map((g) => g.id)).toEqual([
        ...RECORD_GATES,
      ]);
    }
  });

  it('--assume-unapplied: the plan states the assumption and compares with nothing', async () => {
    const p = planProject({ backend: 's3' });
    const { code, stdout } = await p.plan('--no-terraform', '--assume-unapplied');
    expect(code).toBe(0);
    expect(stdout).toContain(
      'ASSUMED: datacenter east of mesh shop is assumed never applied (--assume-unapplied): its s3 state is read with terraform, which does not run here',
    );
    expect(stdout).toContain(
      'mesh shop — compared with nothing applied yet: everything is to create (east, west assumed never applied: --assume-unapplied)',
    );
  });

  it('a state holding resources but no meshform record is not "never applied", and a corrupt state file is named', async () => {
    // GIVEN east applied by hand (resources, no record) and west's state file damaged
    const p = planProject();
    await jsonPlan(p);
    fs.writeFileSync(
      path.join(p.dir, 'terraform.shop-east.tfstate'),
      JSON.stringify({ version: 4, outputs: {}, resources: [{ mode: 'managed', type: 'helm_release', name: 'x' }] }),
    );
    fs.writeFileSync(path.join(p.dir, 'terraform.shop-west.tfstate'), '{"version": 4, "outp');
    // WHEN
    const plan = await jsonPlan(p);
    // THEN neither is taken for "nothing applied"
    expect(plan.exitCode).toBe(1);
    expect(plan.meshes[0]!.applied.map((a) => `${a.datacenter}: ${a.source}`)).toEqual([
      'east: unavailable',
      'west: unavailable',
    ]);
    expect(plan.meshes[0]!.applied[0]!.detail).toMatch(
      /terraform\.shop-east\.tfstate holds 1 resource but no meshform record \(applied by an older meshform or by hand\): what it runs is unknown$/,
    );
    expect(plan.meshes[0]!.applied[1]!.detail).toMatch(/terraform\.shop-west\.tfstate is not JSON \(/);
  });
});

describe('risk gates: each fires, blocks with exit 3, and is acknowledged with --allow', () => {
  it('primary-change', async () => {
    const p = await appliedThenChanged({}, { primary: 'west' });
    const plan = await jsonPlan(p);
    expect(plan.exitCode).toBe(3);
    expect(gateIds(plan)).toEqual(['primary-change']);
    const gate = plan.meshes[0]!.gates[0]!;
    expect(gate.message).toContain('the primary datacenter changes from east to west');
    expect(gate.acknowledgeWith).toBe('--allow primary-change');
    const allowed = await jsonPlan(p, '--allow', 'primary-change');
    expect(gateIds(allowed)).toEqual(['primary-change (acknowledged)']);
    expect(allowed.exitCode).toBe(0);
  });

  it('server-quorum: 3 servers down to 1', async () => {
    const p = await appliedThenChanged({}, { westServers: 1 });
    const plan = await jsonPlan(p);
    expect(gateIds(plan)).toEqual(['server-quorum']);
    expect(plan.meshes[0]!.gates[0]!.message).toContain(
      'datacenter west goes from 3 to 1 server, below the quorum of 2 of the running cluster',
    );
    expect((await jsonPlan(p, '--allow', 'server-quorum')).exitCode).toBe(0);
  });

  it('gateway-readdress: the primary gateway every secondary dials moves', async () => {
    const p = await appliedThenChanged({}, { eastGateway: 'mgw2.east.example.com' });
    const plan = await jsonPlan(p);
    expect(gateIds(plan)).toEqual(['gateway-readdress']);
    expect(plan.meshes[0]!.gates[0]!.message).toContain(
      'moves from mgw.east.example.com:443 to mgw2.east.example.com:443',
    );
    expect(plan.meshes[0]!.changes.map((c) => c.summary)).toContain(
      'gateway of east: address mgw.east.example.com:443 → mgw2.east.example.com:443',
    );
    expect((await jsonPlan(p, '--allow', 'gateway-readdress')).exitCode).toBe(0);
  });

  it('ca-root-without-cross-signing: a root switch the topology forced', async () => {
    // the new root exists (as `meshform ca rotate --root --no-cross-sign --force` makes it)
    const p = await rootOneAppliedRootTwoCreated();
    p.set({ root: 'root-2', allowRotationWithoutCrossSigning: true });
    const plan = await jsonPlan(p);
    expect(gateIds(plan)).toEqual(['ca-root-without-cross-signing']);
    expect(plan.meshes[0]!.gates[0]!.message).toContain(
      'the agent TLS root changes from root-1 to root-2 without a cross-signed overlap',
    );
    expect((await jsonPlan(p, '--allow', 'ca-root-without-cross-signing')).exitCode).toBe(0);
  });

  it('ca-root-without-cross-signing: a service mesh CA change to AWS Private CA', async () => {
    const p = await appliedThenChanged({}, { meshCa: 'aws-pca', allowRotationWithoutCrossSigning: true });
    const plan = await jsonPlan(p);
    expect(gateIds(plan)).toEqual(['ca-root-without-cross-signing']);
    expect(plan.meshes[0]!.gates[0]!.subject).toBe('service mesh CA');
  });

  it('does not gate a cross-signed rotation step, nor the retirement that follows', async () => {
    const p = await rootOneAppliedRootTwoCreated();
    p.set({ root: 'root-2', previousRoot: 'root-1' });
    const step = await jsonPlan(p);
    expect(gateIds(step)).toEqual([]);
    expect(step.meshes[0]!.changes.map((c) => c.summary)).toEqual([
      'agent TLS root root-1 → root-2 (trusting root-1, cross-signed)',
    ]);
    p.markApplied();
    p.set({ root: 'root-2' });
    expect(gateIds(await jsonPlan(p))).toEqual([]);
  });

  it('failover-target-removal: a service stops failing over to a datacenter that stays', async () => {
    // GIVEN api runs in east and west and fails over to west; applied
    const api = { name: 'api', port: 9090, datacenters: ['east', 'west'] };
    const p = await appliedThenChanged({ services: [{ ...api, failover: ['west'] }] }, { services: [api] });
    // WHEN its failover is removed (west stays)
    const plan = await jsonPlan(p);
    // THEN
    expect(gateIds(plan)).toEqual(['failover-target-removal']);
    expect(plan.meshes[0]!.gates[0]!.subject).toBe('service api');
    expect(plan.meshes[0]!.gates[0]!.message).toBe(
      'service api no longer fails over to west (failover west becomes none): while its instances are unhealthy, traffic that fails over there now has nowhere to go. Make sure api is healthy where it runs, or add another target first',
    );
    expect((await jsonPlan(p, '--allow', 'failover-target-removal')).exitCode).toBe(0);
  });

  it('ca-root-without-cross-signing: retiring the old root before every datacenter applied the cross-signed step', async () => {
    // GIVEN root-1 applied everywhere, then the cross-signed step to root-2 applied by east only
    const p = await rootOneAppliedRootTwoCreated();
    p.set({ root: 'root-2', previousRoot: 'root-1' });
    expect(gateIds(await jsonPlan(p))).toEqual([]);
    p.markApplied(['shop-east']);
    // WHEN root-1 is retired
    p.set({ root: 'root-2' });
    const plan = await jsonPlan(p);
    // THEN
    expect(gateIds(plan)).toEqual(['ca-root-without-cross-signing']);
    expect(plan.meshes[0]!.gates[0]!.message).toBe(
      "retiring root-1 although not every datacenter applied the cross-signed step to root-2: west (runs root-1). Their servers trust only the old root and would reject the new chains. Deploy the step (root 'root-2', previousRoot 'root-1') to every datacenter first, then retire root-1",
    );
  });

  it('stateful-destroy: a datacenter leaves the topology', async () => {
    const p = await appliedThenChanged({ datacenters: ['east', 'west', 'north'] }, { datacenters: ['east', 'west'] });
    const plan = await jsonPlan(p);
    expect(gateIds(plan)).toEqual(['stateful-destroy']);
    expect(plan.meshes[0]!.gates[0]!.message).toBe(
      'datacenter north leaves the topology: deploy destroys its stacks (shop-north, in that order), its Consul servers and their data. Move its workloads out and remove it from every failover first',
    );
    // found through the records the other datacenters applied (never through a synthesis)
    expect(plan.meshes[0]!.applied.find((a) => a.datacenter === 'north')).toMatchObject({
      stack: 'shop-north',
      source: 'state-file',
      removed: true,
    });
    expect(plan.stacks.find((s) => s.stack === 'shop-north')).toMatchObject({ status: 'skipped', destroy: true });
    // a second plan still has it: it stays "to destroy" until its state is gone
    expect(gateIds(await jsonPlan(p))).toEqual(['stateful-destroy']);
    expect(plan.meshes[0]!.changes.map((c) => `${c.action} ${c.subject}`)).toEqual([
      'delete datacenter north',
      'delete link north → east',
    ]);
    const svg = fs.readFileSync(path.join(p.dir, plan.meshes[0]!.picture), 'utf8');
    expect(svg).toContain('<g id="dc-north" data-change="removed">');
  });

  it('refuses an unknown gate id with the list of gates', async () => {
    const p = planProject();
    await expect(p.plan('--allow', 'everything')).rejects.toThrow(
      `option "--allow <gate>" argument "everything" is invalid. Use one of ${GATE_IDS.join(', ')}.`,
    );
  });

  describe('from the Terraform plan and the topology alone', () => {
    /** A manifest of the two-datacenter mesh, as synthesized. */
    function manifest(define: Parameters<typeof planProject>[0] = {}): MeshManifest {
      const out = synth((app) => {
        const mesh = new Mesh(app, 'shop', { certificateAuthority: CertificateAuthority.offline() });
        const dcs = (define.datacenters ?? ['east', 'west']).map(
          (name) =>
            new KubernetesDatacenter(mesh, name, {
              primary: name === 'east',
              cluster: KubernetesCluster.fromKubeconfig({
                context: name,
                apiServerUrl: name === 'east' ? undefined : 'https://198.51.100.9',
              }),
              meshGateway: name === 'east' ? { address: 'mgw.east.example.com' } : {},
            }),
        );
        new Service(mesh, 'api', { port: 9090, datacenters: dcs });
      });
      return out.mesh('shop');
    }

    it('failover-target-removal: a datacenter that is a failover target leaves', () => {
      const before = manifest({ datacenters: ['east', 'west'] });
      const withFailover: MeshManifest = {
        ...before,
        services: before.services.map((s) => ({ ...s, failover: ['west'] })),
      };
      const after = manifest({ datacenters: ['east'] });
      const gates = evaluateGates(withFailover, after, diffMesh(withFailover, after), [], new Set());
      expect(gates.map((g) => g.id)).toEqual(['failover-target-removal', 'stateful-destroy']);
      expect(gates[0]!.message).toBe(
        'datacenter west is removed but is a failover target of api: their failover would point nowhere. Remove west from their failover first, deploy, then remove the datacenter',
      );
      expect(
        evaluateGates(
          withFailover,
          after,
          diffMesh(withFailover, after),
          [],
          new Set(['failover-target-removal', 'stateful-destroy']),
        ).every((g) => g.acknowledged),
      ).toBe(true);
    });

    /** A JSON plan as `terraform show -json` prints it, with the given resource changes. */
    function terraformPlan(changes: { address: string; actions: string[]; replace?: string[][] }[]) {
      return {
        resource_changes: changes.map((c) => ({
          address: c.address,
          type: c.address.split('.')[0]!,
          name: c.address.split('.')[1]!,
          mode: 'managed',
          change: { actions: c.actions, ...(c.replace ? { replace_paths: c.replace } : {}) },
        })),
      };
    }
    const vmStack = {
      resource: {
        aws_instance: Object.fromEntries(
          ['server-0', 'server-1', 'server-2', 'service-api-0'].map((n) => [
            n,
            { '//': { metadata: { path: `shop-vms/${n}` } } },
          ]),
        ),
      },
    };

    it('server-replacement and stateful-destroy: every server of a datacenter replaced at once', () => {
      const summary = summarizeTerraformPlan(
        terraformPlan([
          { address: 'aws_instance.server-0', actions: ['delete', 'create'], replace: [['ami']] },
          { address: 'aws_instance.server-1', actions: ['delete', 'create'], replace: [['ami']] },
          { address: 'aws_instance.server-2', actions: ['delete', 'create'], replace: [['ami']] },
          { address: 'aws_instance.service-api-0', actions: ['delete', 'create'], replace: [['ami']] },
        ]),
        vmStack,
      );
      expect(summary.counts).toEqual({ create: 0, update: 0, replace: 4, delete: 0 });
      expect(summary.resources[0]).toEqual({
        address: 'aws_instance.server-0',
        type: 'aws_instance',
        action: 'replace',
        constructPath: 'shop-vms/server-0',
        replaceBecause: ['ami'],
      });
      const m = manifest();
      const gates = evaluateGates(m, m, [], [{ stack: 'shop-vms', resources: summary.resources }], new Set());
      expect(gates.map((g) => g.id)).toEqual(['server-replacement', 'stateful-destroy']);
      expect(gates[0]!.message).toContain(
        'shop-vms replaces or removes 3 Consul servers at once (aws_instance.server-0 because of ami;',
      );
    });

    it('does not gate one server replaced at a time, nor a service host', () => {
      const summary = summarizeTerraformPlan(
        terraformPlan([
          { address: 'aws_instance.server-0', actions: ['create', 'delete'], replace: [['user_data']] },
          { address: 'aws_instance.service-api-0', actions: ['delete', 'create'] },
        ]),
        vmStack,
      );
      const m = manifest();
      const gates = evaluateGates(m, m, [], [{ stack: 'shop-vms', resources: summary.resources }], new Set());
      expect(gates.map((g) => g.id)).toEqual(['stateful-destroy']);
      expect(gates[0]!.message).toContain('aws_instance.server-0 (replace because of user_data)');
    });

    it('stateful-destroy: a stack that left the app while its datacenter stays', () => {
      const summary = summarizeTerraformPlan(
        terraformPlan([{ address: 'kubernetes_manifest.ServiceDefaults_api', actions: ['delete'] }]),
        {},
      );
      const m = manifest();
      const leaving = [{ stack: 'shop-east-config', resources: summary.resources, leaves: { datacenter: 'east' } }];
      const gates = evaluateGates(m, m, [], leaving, new Set());
      expect(gates.map((g) => `${g.id} ${g.subject}`)).toEqual(['stateful-destroy shop-east-config']);
      expect(gates[0]!.message).toBe(
        'shop-east-config left the app: deploy destroys everything it applied (1 resource: kubernetes_manifest.ServiceDefaults_api). Keep it in the app if it still serves, or back up what it holds first',
      );
    });

    it('stateful-destroy: the Consul release or namespace of a cluster is destroyed', () => {
      const summary = summarizeTerraformPlan(
        terraformPlan([
          { address: 'helm_release.ControlPlane_Consul_1', actions: ['delete'] },
          { address: 'kubernetes_namespace_v1.ControlPlane_Namespace_1', actions: ['delete'] },
          { address: 'kubernetes_secret_v1.ControlPlane_GossipKey_1', actions: ['update'] },
        ]),
        {},
      );
      const m = manifest();
      const gates = evaluateGates(
        m,
        m,
        [],
        [{ stack: 'shop-east', resources: summary.resources }],
        new Set(['server-replacement']),
      );
      expect(gates.map((g) => `${g.id}${g.acknowledged ? '+' : ''}`)).toEqual([
        'server-replacement+',
        'stateful-destroy',
      ]);
      expect(gates[1]!.message).toContain(
        'helm_release.ControlPlane_Consul_1 (delete), kubernetes_namespace_v1.ControlPlane_Namespace_1 (delete)',
      );
    });
  });
});

describe('plan output', () => {
  it('renders a pull-request comment', async () => {
    const p = await appliedThenChanged(
      {},
      { primary: 'west', westServers: 1, services: [{ name: 'web', port: 80, datacenters: ['west'] }] },
    );
    const plan = await jsonPlan(p, '--allow', 'server-quorum');
    // the topology picture is drawn from the mesh manifest of the synthesis planned
    const manifest = readOutput(path.join(p.dir, 'cdktf.out')).mesh('shop');
    expect(renderPlanMarkdown(plan, undefined, [manifest])).toMatchSnapshot();
    const { stdout } = await p.plan('--markdown', '--no-terraform', '--allow', 'server-quorum');
    expect(stdout).toBe(
      renderPlanMarkdown(plan, nextStep(plan, ` --project ${p.dir} --secrets-dir ${p.store}`), [manifest]),
    );
  });

  it('prints the plan for a terminal, with the gates and how to acknowledge them', async () => {
    const p = await appliedThenChanged({}, { westServers: 1 });
    const { code, stdout } = await p.plan('--no-terraform');
    expect(code).toBe(3);
    expect(stdout).toContain(
      'mesh shop — compared with what every datacenter applied (recorded in its Terraform state)',
    );
    expect(stdout).toContain('  ~ datacenter west: servers 3 → 1');
    expect(stdout).toContain('✗ BLOCKED server-quorum — servers of west');
    expect(stdout).toContain('acknowledge with --allow server-quorum');
    expect(stdout).toContain('Terraform not run: skipped (--no-terraform)');
  });
});

/**
 * GIVEN a stand-in for Terraform Cloud's API (JSON:API documents as its API reference describes them: a
 * workspace with its current-state-version relationship and resource-count, the current state version with
 * resources-processed, the current state version's outputs), answering 404 for anything it does not know or
 * a wrong token, as Terraform Cloud does ("not found, or user unauthorized").
 */
async function terraformCloudStandIn(workspaces: {
  [name: string]: { outputs?: { [name: string]: string }; resources?: number };
}): Promise<{ base: string; seen: string[]; close: () => void }> {
  const seen: string[] = [];
  const byId = new Map(Object.keys(workspaces).map((name, i) => [`ws-${i}`, name]));
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    res.setHeader('Content-Type', 'application/vnd.api+json');
    const send = (body: unknown) => res.end(JSON.stringify(body));
    const authorized = req.headers.authorization === 'Bearer test-token';
    const ws = req.url?.match(/^\/api\/v2\/organizations\/acme\/workspaces\/([^/]+)$/);
    const byWorkspace = req.url?.match(/^\/api\/v2\/workspaces\/(ws-\d+)\/(current-state-version(?:-outputs)?)$/);
    const name = ws ? decodeURIComponent(ws[1]!) : byWorkspace ? byId.get(byWorkspace[1]!) : undefined;
    const workspace = name === undefined ? undefined : workspaces[name];
    if (!authorized || !workspace) {
      res.statusCode = 404;
      return send({ errors: [{ status: '404', title: 'not found' }] });
    }
    const id = [...byId].find(([, n]) => n === name)![0];
    const state = workspace.outputs !== undefined;
    if (ws)
      return send({
        data: {
          id,
          type: 'workspaces',
          attributes: { name, 'resource-count': workspace.resources ?? 0 },
          relationships: {
            'current-state-version': { data: state ? { id: `sv-${id}`, type: 'state-versions' } : null },
          },
        },
      });
    if (!state) {
      res.statusCode = 404;
      return send({ errors: [{ status: '404', title: 'not found' }] });
    }
    if (byWorkspace![2] === 'current-state-version')
      return send({ data: { id: `sv-${id}`, type: 'state-versions', attributes: { 'resources-processed': true } } });
    return send({
      data: Object.entries(workspace.outputs!).map(([n, value]) => ({
        type: 'state-version-outputs',
        attributes: { name: n, value, sensitive: false },
      })),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
}

describe('Terraform Cloud stacks', () => {
  /** WHEN helper: what stack `stack` applied, read from workspace `name` of a stand-in holding `workspaces`. */
  async function lookUpInCloud(
    workspaces: Parameters<typeof terraformCloudStandIn>[0],
    token: string,
    stack: string,
    name: string,
  ): Promise<{ lookup: Awaited<ReturnType<typeof readAppliedRecord>>; seen: string[] }> {
    const api = await terraformCloudStandIn(workspaces);
    process.env.TF_TOKEN_app_terraform_io = token;
    try {
      const stackJson = { terraform: { cloud: { organization: 'acme', workspaces: { name } } } };
      const lookup = await readAppliedRecord(stack, tempDir(), stackJson, undefined, {
        offline: false,
        terraformCloudBaseUrl: () => api.base,
      });
      return { lookup, seen: api.seen };
    } finally {
      delete process.env.TF_TOKEN_app_terraform_io;
      api.close();
    }
  }

  it('reads what a workspace applied through the API, and knows a workspace with no state', async () => {
    const record = {
      format: 1,
      mesh: 'payments',
      stack: 'payments-aws-eu-west',
      datacenter: 'aws-eu-west',
      manifest: {},
    };
    const workspaces = {
      'mesh-payments-aws-eu-west': { outputs: { [APPLIED_OUTPUT]: JSON.stringify(record) }, resources: 12 },
      'mesh-new': {},
    };
    const found = await lookUpInCloud(workspaces, 'test-token', 'payments-aws-eu-west', 'mesh-payments-aws-eu-west');
    expect(found.lookup).toMatchObject({
      source: 'terraform-cloud',
      detail: 'from workspace acme/mesh-payments-aws-eu-west',
      record,
      resources: 12,
    });
    expect(found.seen[0]).toBe('GET /api/v2/organizations/acme/workspaces/mesh-payments-aws-eu-west Bearer test-token');
    expect((await lookUpInCloud(workspaces, 'test-token', 'payments-new', 'mesh-new')).lookup).toEqual({
      stack: 'payments-new',
      source: 'none',
      detail: 'workspace acme/mesh-new has no state yet',
      resources: 0,
    });
  });

  it('never reads a 404 as "never applied": Terraform Cloud answers it for "not allowed" too', async () => {
    // GIVEN a workspace that exists and applied, and a token that may not read it (the API answers 404)
    const workspaces = { 'mesh-payments-x': { outputs: { other: 'x' }, resources: 3 } };
    // WHEN
    const { lookup } = await lookUpInCloud(
      workspaces,
      'a-token-of-another-organization',
      'payments-x',
      'mesh-payments-x',
    );
    // THEN what it applied is unknown, not nothing
    expect(lookup).toEqual({
      stack: 'payments-x',
      source: 'unavailable',
      detail:
        'Terraform Cloud answers 404 for workspace acme/mesh-payments-x: it does not exist, or the token may not read it (the API gives the same answer for both)',
    });
  });

  it('a workspace whose state holds resources but no meshform record is not "never applied"', async () => {
    const workspaces = { 'mesh-payments-x': { outputs: { other: 'x' }, resources: 3 } };
    const { lookup } = await lookUpInCloud(workspaces, 'test-token', 'payments-x', 'mesh-payments-x');
    expect(lookup).toMatchObject({ source: 'unavailable', resources: 3 });
    expect(lookup.detail).toBe(
      'workspace acme/mesh-payments-x holds 3 resources but no meshform record (applied by an older meshform or by hand): what it runs is unknown',
    );
  });

  it('a pipeline without credentials: the plan fails closed (exit 1), every datacenter named, gates "cannot evaluate"', async () => {
    // GIVEN the mesh's stacks in Terraform Cloud and no token in the environment
    const p = planProject({ backend: 'cloud' });
    // WHEN
    const plan = await jsonPlan(p);
    // THEN
    expect(plan.exitCode).toBe(1);
    const mesh = plan.meshes[0]!;
    expect(mesh.comparedWith).toBe('unreadable');
    expect(mesh.applied.map((a) => `${a.datacenter}: ${a.source} (${a.detail})`)).toEqual([
      'east: unavailable (no token for app.terraform.io (TF_TOKEN_app_terraform_io, TFE_TOKEN or terraform login))',
      'west: unavailable (no token for app.terraform.io (TF_TOKEN_app_terraform_io, TFE_TOKEN or terraform login))',
    ]);
    expect(mesh.changes).toEqual([]);
    expect(mesh.gates.map((g) => `${g.id}: ${g.status}`)).toEqual(RECORD_GATES.map((id) => `${id}: cannot-evaluate`));
    expect(mesh.gates[0]!.acknowledgeWith).toBe('read access to the state of east, west, or --assume-unapplied');
    // AND the text says why and what to do
    const { code, stdout } = await p.plan('--no-terraform');
    expect(code).toBe(1);
    expect(stdout).toContain(
      '  ? datacenter east: what it applied is unknown (shop-east: no token for app.terraform.io',
    );
    expect(stdout).toContain(
      '? CANNOT EVALUATE ca-root-without-cross-signing, server-quorum, primary-change, gateway-readdress, failover-target-removal, stateful-destroy — what east, west applied',
    );
    expect(stdout).toContain('Exit 1: the plan is incomplete');
  });

  it('a token that cannot read the workspaces (404): exit 1 through the whole plan; --assume-unapplied states the assumption', async () => {
    const api = await terraformCloudStandIn({ 'mesh-shop-east': { outputs: {} }, 'mesh-shop-west': { outputs: {} } });
    process.env.TF_TOKEN_app_terraform_io = 'a-token-of-another-organization';
    const p = planProject({ backend: 'cloud' });
    const options = {
      projectDir: p.dir,
      store: SecretStore.open({ directory: p.store }),
      offline: false,
      parallelism: 2,
      allow: new Set<string>(),
      terraform: false,
      terraformCloudBaseUrl: () => api.base,
    };
    try {
      const failed = await planDocument(options);
      expect(failed.exitCode).toBe(1);
      expect(failed.meshes[0]!.applied[0]!.detail).toMatch(
        /^Terraform Cloud answers 404 for workspace acme\/mesh-shop-east/,
      );
      const assumed = await planDocument({ ...options, assumeUnapplied: true });
      expect(assumed.exitCode).toBe(0);
      expect(assumed.assumptions).toEqual([
        expect.stringMatching(
          /^datacenter east of mesh shop is assumed never applied \(--assume-unapplied\): Terraform Cloud answers 404/,
        ),
        expect.stringMatching(/^datacenter west of mesh shop is assumed never applied/),
      ]);
      expect(assumed.meshes[0]!.comparedWith).toBe('nothing');
      expect(assumed.meshes[0]!.assumedUnapplied).toEqual(['east', 'west']);
      expect(renderPlanText(assumed)).toContain(
        'ASSUMED: datacenter east of mesh shop is assumed never applied (--assume-unapplied): Terraform Cloud answers 404',
      );
    } finally {
      delete process.env.TF_TOKEN_app_terraform_io;
      api.close();
    }
  });
});
