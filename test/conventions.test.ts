/**
 * cdktf conventions: every resource exists once it is declared (Testing.synth and aspects see whole stacks),
 * the stacks of a mesh live below it (Aspects.of(mesh) reaches all of them), an app's own outdir is honoured
 * by `meshform synth` / `check` / `plan` and by `cdktf synth`, the manifest names dependencies as cdktf's
 * CLI looks stacks up, and the dependency between constructs/ and stacks/ runs one way (the README says which).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IConstruct } from 'constructs';
import * as ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { terraformAvailability } from '../cli/terraform';
import {
  App,
  Aspects,
  type IAspect,
  TerraformDataSource,
  TerraformResource,
  TerraformStack,
  Testing,
} from '../constructs/private/engine';
import { defineDefaultMesh } from '../examples/default/main';
import {
  HttpPermission,
  KubernetesCluster,
  KubernetesDatacenter,
  Mesh,
  Service,
  ServiceProtocol,
  VmDatacenter,
  VmNetwork,
} from '../index';
import {
  awsVmHosts,
  ownHosts,
  readOutput,
  readTree,
  REPO,
  run,
  RUN_TS,
  runAsync,
  StackJson,
  tempDir,
  thrownMessage,
} from './support';

const terraform = terraformAvailability({ offline: true });

/** A stack's Terraform as `Testing.synth` shows it: cdktf's `//` metadata removed. */
function withoutMetadata(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutMetadata);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== '//')
      .map(([key, v]) => [key, withoutMetadata(v)]),
  );
}

/** GIVEN helper: a fresh app writing into a temporary directory. */
function newApp(): { app: App; outdir: string } {
  const outdir = path.join(tempDir(), 'cdktf.out');
  return { app: new App({ outdir, stackTraces: false }), outdir };
}

/** Every stack of an app, wherever it is in the tree. */
function stacksOf(app: App): TerraformStack[] {
  return app.node.findAll().filter((c): c is TerraformStack => TerraformStack.isStack(c));
}

/** GIVEN helper: a VM primary `name` on EC2 in a new VPC (`cidr`), its gateway at mgw.<name>.example.com. */
function ec2Primary(mesh: Mesh, name: string, cidr = '10.20.0.0/16'): VmDatacenter {
  return new VmDatacenter(mesh, name, {
    primary: true,
    meshGateway: { address: `mgw.${name}.example.com` },
    hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr }) }),
  });
}

/**
 * WHEN each stack goes through Testing.synth before the app synthesizes, THEN it shows exactly the Terraform the
 * app then writes (metadata aside): nothing is created at synthesis. Returns the stacks as Testing.synth saw them.
 */
function expectWholeBeforeSynth(app: App, outdir: string): Map<string, StackJson> {
  const before = new Map(stacksOf(app).map((s) => [s.node.id, JSON.parse(Testing.synth(s)) as StackJson]));
  app.synth();
  const out = readOutput(outdir);
  expect(out.stackNames().sort()).toEqual([...before.keys()].sort());
  for (const [name, json] of before) expect(withoutMetadata(out.stack(name)), name).toEqual(json);
  return before;
}

describe('stacks hold every resource from their declaration (Testing.synth)', () => {
  it('a VM datacenter stack shows servers, gateways, service hosts, secrets and security groups', () => {
    // GIVEN a VM primary, then a Kubernetes secondary, then a service placed in the VM datacenter
    const { app, outdir } = newApp();
    const mesh = new Mesh(app, 'shop');
    const vms = ec2Primary(mesh, 'vms');
    new KubernetesDatacenter(mesh, 'k', {
      cluster: KubernetesCluster.fromKubeconfig({ context: 'k', apiServerUrl: 'https://203.0.113.9' }),
      meshGateway: { address: '203.0.113.10' },
    });
    new Service(mesh, 'api', { port: 8080, datacenters: [vms] });
    // WHEN
    const stack = JSON.parse(Testing.synth(vms.stack)) as StackJson;
    // THEN
    expect(Object.keys(stack.resource!.aws_instance!).sort()).toEqual([
      'mesh-gateway-0',
      'mesh-gateway-1',
      'server-0',
      'server-1',
      'server-2',
      'service-api-0',
      'service-api-1',
    ]);
    expect(Object.keys(stack.resource!.aws_secretsmanager_secret!).sort()).toEqual([
      'Secret-mesh-gateway',
      'Secret-server',
      'Secret-service-api',
    ]);
    expect(Object.keys(stack.resource!.aws_secretsmanager_secret_version!).sort()).toEqual([
      'SecretValue-mesh-gateway',
      'SecretValue-server',
      'SecretValue-service-api',
    ]);
    expect(Object.keys(stack.resource!.aws_security_group!).sort()).toEqual([
      'clientSecurityGroup',
      'gatewaySecurityGroup',
      'serverSecurityGroup',
    ]);
    // the secondary declared after the VM datacenter: its gateway is dialled at its declared address
    expect(stack.resource!.aws_vpc_security_group_egress_rule!['out-gateway-gateway-k']).toMatchObject({
      cidr_ipv4: '203.0.113.10/32',
      from_port: 443,
    });
    // the service's host group boots with its registration and its sidecar, and its token is derived like the others'
    const locals = (stack as { locals?: { [name: string]: unknown } }).locals!;
    expect(String(locals.cloud_init_service_api)).toContain(
      '- enable\n    - --now\n    - --no-block\n    - consul.service\n    - meshform-service-api.service\n    - envoy-api.service\n',
    );
    expect(Object.keys(locals)).toContain('meshform_secret_service_vms_api');
    // AND the app writes exactly that stack
    expectWholeBeforeSynth(app, outdir);
  });

  it('Kubernetes, EKS infra and config stacks show their resources, including what later declarations add', () => {
    // GIVEN an EKS secondary declared before its VM primary, and a Kubernetes primary in a second mesh whose
    // services gain intentions, subsets and a split after they were declared
    const { app, outdir } = newApp();
    const shop = new Mesh(app, 'shop');
    const west = new KubernetesDatacenter(shop, 'west', {
      cluster: KubernetesCluster.eks({
        region: 'us-west-2',
        vpcCidr: '10.11.0.0/16',
        apiPublicAccessCidrs: ['198.51.100.0/24'],
      }),
    });
    ec2Primary(shop, 'vms');
    const bank = new Mesh(app, 'bank');
    const east = new KubernetesDatacenter(bank, 'east', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
    });
    const api = new Service(bank, 'api', { port: 8080, protocol: ServiceProtocol.HTTP, datacenters: [east] });
    const web = new Service(bank, 'web', { port: 80, protocol: ServiceProtocol.HTTP, datacenters: [east] });
    api.allowFrom(web, { permissions: [HttpPermission.allow({ pathPrefix: '/api/' })] });
    api.addSubset({ name: 'v1', filter: 'Service.Meta.version == v1' });
    api.splitTraffic([{ subset: 'v1', weight: 100 }]);
    // WHEN / THEN
    const stacks = expectWholeBeforeSynth(app, outdir);
    const infra = stacks.get('shop-west-infra')!;
    expect(infra.data!.aws_eips!.PrimaryEgress).toMatchObject({
      filter: expect.arrayContaining([{ name: 'tag:meshform:datacenter', values: ['vms'] }]),
    });
    expect(Object.keys(infra.resource!.aws_eks_cluster!)).toEqual(['Cluster']);
    expect(stacks.get('shop-west')!.resource!.helm_release).toBeDefined();
    // (cdktf suffixes the id of a resource in a nested construct with a hash of its path)
    const secrets = Object.keys(stacks.get('bank-east')!.resource!.kubernetes_secret_v1!);
    expect(secrets.map((id) => id.replace(/_[0-9A-F]{8}$/, '')).sort()).toEqual([
      'ControlPlane_AclReplicationToken',
      'ControlPlane_AclToken',
      'ControlPlane_CaBundle',
      'ControlPlane_GossipKey',
      'ControlPlane_ServerCert',
    ]);
    expect(Object.keys(stacks.get('bank-east-config')!.resource!.kubernetes_manifest!).sort()).toEqual([
      'Mesh-mesh',
      'ProxyDefaults-global',
      'ServiceDefaults-api',
      'ServiceDefaults-web',
      'ServiceIntentions-api',
      'ServiceResolver-api',
      'ServiceSplitter-api',
    ]);
    expect(west.stack.dependencies.map((s) => s.node.id).sort()).toEqual(['shop-vms', 'shop-west-infra']);
  });

  it('takes a service declared after its datacenter, and refuses one declared after synthesis', () => {
    // GIVEN a VM datacenter that runs nothing yet
    const { app } = newApp();
    const mesh = new Mesh(app, 'shop');
    const vms = ec2Primary(mesh, 'vms');
    const hosts = () =>
      Object.keys((JSON.parse(Testing.synth(vms.stack)) as StackJson).resource!.aws_instance!).filter((h) =>
        h.startsWith('service-'),
      );
    expect(hosts()).toEqual([]);
    // WHEN a service is declared, then placed there
    const db = new Service(mesh, 'db', { port: 5432 });
    db.runsIn(vms);
    // THEN its hosts are in the stack at once
    expect(hosts()).toEqual(['service-db-0', 'service-db-1']);
    // WHEN the app synthesizes, THEN the mesh takes no more declarations
    app.synth();
    expect(thrownMessage(() => new Service(mesh, 'late', { port: 80, datacenters: [vms] }))).toBe(
      '[shop/late] declared after the mesh was synthesized (app.synth() validated it and wrote its stacks): "shop". ' +
        'Fix: declare every datacenter, service and relation of the mesh before app.synth()',
    );
    expect(thrownMessage(() => db.runsIn(vms).addSubset({ name: 'v2', filter: 'Service.Meta.version == v2' }))).toBe(
      '[shop/db] declared after the mesh was synthesized (app.synth() validated it and wrote its stacks): "shop". ' +
        'Fix: declare every datacenter, service and relation of the mesh before app.synth()',
    );
  });

  it('adds a peering and the peers to the gateway rules when it is declared, not at synthesis', () => {
    // GIVEN two VM datacenters of a region
    const { app, outdir } = newApp();
    const mesh = new Mesh(app, 'shop');
    const a = ec2Primary(mesh, 'a', '10.1.0.0/16');
    const b = new VmDatacenter(mesh, 'b', {
      meshGateway: { address: 'mgw.b.example.com', port: 8443 },
      hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr: '10.2.0.0/16' }) }),
    });
    const rules = () =>
      (JSON.parse(Testing.synth(a.stack)) as StackJson).resource!.aws_vpc_security_group_egress_rule![
        'out-gateway-gateway-b'
      ];
    expect(rules()).toMatchObject({ cidr_ipv4: '0.0.0.0/0', from_port: 8443 });
    // WHEN
    b.peerWith(a);
    // THEN a dials b's gateway in b's VPC only, admits b on its gateway port, and b's stack holds the peering
    expect(rules()).toMatchObject({ cidr_ipv4: '10.2.0.0/16', from_port: 8443 });
    const stacks = expectWholeBeforeSynth(app, outdir);
    expect(
      stacks.get('shop-a')!.resource!.aws_vpc_security_group_ingress_rule!['in-gateway-from-10200--16'],
    ).toMatchObject({ cidr_ipv4: '10.2.0.0/16', description: 'mesh gateway port from peered datacenter b' });
    expect(Object.keys(stacks.get('shop-b')!.resource!.aws_vpc_peering_connection!)).toEqual(['Peering-shop-a']);
  });

  it('an own-hosts stack shows its outputs and the mesh it applies, and its synthesis writes every host a bundle', () => {
    // GIVEN an EC2 primary, then a datacenter on your own hosts whose client host runs api
    const { app, outdir } = newApp();
    const mesh = new Mesh(app, 'shop');
    const aws = ec2Primary(mesh, 'aws');
    const api = new Service(mesh, 'api', { port: 8080 });
    const own = new VmDatacenter(mesh, 'own', { meshGateway: { address: '192.0.2.10' }, hosts: ownHosts([api]) });
    // WHEN
    const stack = JSON.parse(Testing.synth(own.stack)) as StackJson;
    // THEN Terraform creates nothing on your hosts: the stack's outputs name the bundles and the mesh it applies
    expect(stack.resource).toBeUndefined();
    expect(stack.output!.bundles).toMatchObject({ value: 'bundles/shop-own' });
    const applied = JSON.parse(String(stack.output!.meshform_applied!.value)) as {
      manifest: { primary: string; datacenters: { name: string; ownHosts?: unknown[] }[] };
    };
    expect(applied.manifest.primary).toBe('aws');
    expect(applied.manifest.datacenters.find((dc) => dc.name === 'own')!.ownHosts).toContainEqual({
      name: 'c1',
      address: '10.0.0.5',
      role: 'client',
      services: ['api'],
    });
    // AND the primary, declared before it, dials its gateway
    expect(
      (JSON.parse(Testing.synth(aws.stack)) as StackJson).resource!.aws_vpc_security_group_egress_rule![
        'out-gateway-gateway-own'
      ],
    ).toMatchObject({ cidr_ipv4: '192.0.2.10/32', from_port: 443 });
    // AND the app writes that stack, and one bundle per host with the service's units on the host that runs it
    expectWholeBeforeSynth(app, outdir);
    const bundles = path.join(outdir, 'bundles', 'shop-own');
    expect(fs.readdirSync(bundles).sort()).toEqual(['c1', 'g1', 's1', 's2', 's3']);
    expect(fs.readdirSync(path.join(bundles, 'c1', 'files', 'etc', 'systemd', 'system')).sort()).toEqual([
      'consul.service',
      'envoy-api.service',
      'meshform-secrets.service',
      'meshform-service-api.service',
    ]);
  });
});

/** An aspect that records every resource and data source it visits and tags every AWS resource that takes tags. */
class CostCenter implements IAspect {
  public readonly visited = new Set<string>();
  public readonly tagged = new Set<string>();

  public visit(node: IConstruct): void {
    if (!TerraformResource.isTerraformResource(node) && !TerraformDataSource.isTerraformDataSource(node)) return;
    const key = `${TerraformStack.of(node).node.id} ${node.terraformResourceType}.${node.friendlyUniqueId}`;
    this.visited.add(key);
    const taggable = node as unknown as { tagsInput?: { [key: string]: string }; tags: { [key: string]: string } };
    if (TerraformResource.isTerraformResource(node) && 'tagsInput' in taggable) {
      taggable.tags = { ...(taggable.tagsInput ?? {}), 'cost-center': 'mesh-team' };
      this.tagged.add(key);
    }
  }
}

describe('the stacks of a mesh are below it', () => {
  it('an aspect added to the mesh visits every resource of every stack and tags them', () => {
    // GIVEN the default example (an EKS primary with its infra and config stacks, a GKE cluster, EC2 VMs)
    const { app, outdir } = newApp();
    const mesh = defineDefaultMesh(app);
    const aspect = new CostCenter();
    // WHEN
    Aspects.of(mesh).add(aspect);
    app.synth();
    // THEN every resource and data source of the output was visited
    const out = readOutput(outdir);
    const written = out.stackNames().flatMap((name) => {
      const stack = out.stack(name);
      return [stack.resource ?? {}, stack.data ?? {}].flatMap((blocks) =>
        Object.entries(blocks).flatMap(([type, byId]) => Object.keys(byId).map((id) => `${name} ${type}.${id}`)),
      );
    });
    expect(written.length).toBeGreaterThan(100);
    expect([...aspect.visited].sort()).toEqual(written.sort());
    // AND every taggable resource carries the tag in the output
    for (const key of aspect.tagged) {
      const [stack, address] = key.split(' ') as [string, string];
      const [type, id] = [address.slice(0, address.indexOf('.')), address.slice(address.indexOf('.') + 1)];
      expect(out.stack(stack).resource![type]![id]!.tags, key).toMatchObject({ 'cost-center': 'mesh-team' });
    }
    const taggedTypes = new Set([...aspect.tagged].map((k) => k.split(' ')[1]!.split('.')[0]));
    for (const type of [
      'aws_eks_cluster',
      'aws_instance',
      'aws_secretsmanager_secret',
      'aws_security_group',
      'aws_vpc',
    ])
      expect(taggedTypes, type).toContain(type);
    // AND the stacks are found below the mesh
    expect(
      mesh.node
        .findAll()
        .filter((c) => TerraformStack.isStack(c))
        .map((s) => s.node.id)
        .sort(),
    ).toEqual(out.stackNames().sort());
  });

  it("names each dependency in the manifest by its stack's name, as cdktf's CLI looks it up", () => {
    // GIVEN a stack of the app that deploys after a stack of the mesh (hashicorp/terraform-cdk#2976: cdktf
    // records a nested stack's dependencies by construct path)
    const { app, outdir } = newApp();
    const mesh = defineDefaultMesh(app);
    const after = new TerraformStack(app, 'after-the-mesh');
    after.addDependency(mesh.datacenter('aws-vms')!.controlPlaneStack);
    // WHEN
    app.synth();
    // THEN
    const manifest = readOutput(outdir).manifest;
    expect(manifest.stacks['after-the-mesh']!.dependencies).toEqual(['shop-aws-vms']);
    expect(manifest.stacks['shop-aws-vms']!.dependencies).toEqual(['shop-aws-us-east']);
    const names = new Set(Object.keys(manifest.stacks));
    for (const [name, stack] of Object.entries(manifest.stacks))
      for (const dependency of stack.dependencies) expect(names, `${name} -> ${dependency}`).toContain(dependency);
  });
});

/** GIVEN helper: a project whose app names its own output directory `out`; cdktf.json's "output" as given. */
function ownOutdirProject(output: string | undefined): string {
  const dir = tempDir('meshform-outdir-');
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `import { App, MachineImage, Mesh, Service, VmDatacenter, VmHosts, VmNetwork } from ${JSON.stringify(path.join(REPO, 'index'))};
const app = new App({ outdir: 'out', stackTraces: false });
const mesh = new Mesh(app, 'shop');
const vms = new VmDatacenter(mesh, 'vms', {
  primary: true,
  meshGateway: { address: 'mgw.vms.example.com' },
  hosts: VmHosts.onAws({ region: 'eu-west-1', network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }), machineImage: MachineImage.fromId('ami-0123456789abcdef0') }),
});
const api = new Service(mesh, 'api', { port: 8080, datacenters: [vms] });
const web = new Service(mesh, 'web', { port: 80, datacenters: [vms] });
web.addUpstream(api);
api.allowFrom(web);
app.synth();
`,
  );
  fs.writeFileSync(
    path.join(dir, 'cdktf.json'),
    JSON.stringify({ language: 'typescript', app: `${RUN_TS} app.ts`, ...(output ? { output } : {}) }),
  );
  return dir;
}

/** The Terraform files of an output directory (stacks and manifest), path -> content. */
function terraformFiles(outdir: string): Map<string, string> {
  return new Map([...readTree(outdir)].filter(([file]) => file === 'manifest.json' || file.endsWith('cdk.tf.json')));
}

describe("an app's own outdir", () => {
  it('is where `cdktf synth`, `meshform synth`, `check` and `plan` write and read', async () => {
    // GIVEN new App({ outdir: 'out' }) and cdktf.json's "output": "out"
    const dir = ownOutdirProject('out');
    const store = path.join(dir, 'store');
    // WHEN cdktf's CLI synthesizes it
    execFileSync(path.join(REPO, 'node_modules', '.bin', 'cdktf'), ['synth'], {
      cwd: dir,
      env: { ...process.env, CHECKPOINT_DISABLE: '1', CI: '1' },
      stdio: 'pipe',
    });
    const byCdktf = terraformFiles(path.join(dir, 'out'));
    expect([...byCdktf.keys()].sort()).toEqual(['manifest.json', 'stacks/shop-vms/cdk.tf.json']);
    // WHEN meshform synthesizes it (into a staging directory swapped into place)
    const { code, stdout } = run(['synth', '--project', dir, '--secrets-dir', store]);
    // THEN the same stacks are in out/, nothing elsewhere, nothing left beside it
    expect(code).toBe(0);
    expect(stdout).toContain('synthesized into out');
    expect(terraformFiles(path.join(dir, 'out'))).toEqual(byCdktf);
    expect(readOutput(path.join(dir, 'out')).mesh('shop').deployOrder).toEqual(['shop-vms']);
    expect(fs.readdirSync(dir).sort()).toEqual(['.meshform-cache', 'app.ts', 'cdktf.json', 'out', 'store']);
    // WHEN / THEN check reads it
    const check = run(['check', '--project', dir, '--secrets-dir', store]);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('mesh shop — 1 upstream edge, all reachable');
    // WHEN / THEN plan plans it with Terraform, where Terraform is here
    if (!terraform.ok) return;
    const plan = await runAsync(['plan', '--offline', '--project', dir, '--secrets-dir', store]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/shop-vms\s+\d+ to create, 0 to update, 0 to replace, 0 to destroy/);
    expect(fs.existsSync(path.join(dir, 'out', 'meshform', 'plan', 'shop.svg'))).toBe(true);
  }, 600_000);

  it('must be the one cdktf.json names: meshform says so and writes nothing', () => {
    // GIVEN new App({ outdir: 'out' }) and a cdktf.json without "output" (cdktf.out)
    const dir = ownOutdirProject(undefined);
    // WHEN / THEN
    const message = thrownMessage(() => run(['synth', '--project', dir, '--secrets-dir', path.join(dir, 'store')]));
    expect(message).toBe(
      `synthesis failed (${RUN_TS} app.ts); nothing was written:\n` +
        `[shop] the app's own output directory (new App({ outdir })) is not the one cdktf.json names ("output": "cdktf.out"), ` +
        `where meshform and cdktf read the output: "out". Fix: set "output": "out" in cdktf.json, or leave outdir out of ` +
        `new App() to take cdktf.json's`,
    );
    expect(fs.existsSync(path.join(dir, 'cdktf.out'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'out', 'manifest.json'))).toBe(false);
  });
});

/** The two directories whose dependency runs one way (constructs/private/ is neither: both may import it). */
type Layer = 'constructs' | 'stacks';

/** The layer of a project file: public constructs, stacks, or undefined (constructs/private/ and the rest). */
function layerOf(file: string): Layer | undefined {
  if (file.startsWith('stacks/')) return 'stacks';
  if (file.startsWith('constructs/') && !file.startsWith('constructs/private/')) return 'constructs';
  return undefined;
}

/**
 * The import graph of constructs/ and stacks/ as the TypeScript compiler reads and resolves it with the project's
 * tsconfig: project file -> the project files it imports (values and types, re-exports, require and import()).
 */
function importGraph(): Map<string, string[]> {
  const config = ts.readConfigFile(path.join(REPO, 'tsconfig.json'), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, REPO);
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
      const file = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts')) {
        const source = fs.readFileSync(path.join(REPO, file), 'utf8');
        const imported = ts.preProcessFile(source, true, true).importedFiles.flatMap(({ fileName }) => {
          const resolved = ts.resolveModuleName(fileName, path.join(REPO, file), options, ts.sys).resolvedModule;
          if (!resolved || resolved.isExternalLibraryImport) return [];
          return [path.relative(REPO, resolved.resolvedFileName).split(path.sep).join('/')];
        });
        graph.set(file, imported);
      }
    }
  };
  walk('constructs');
  walk('stacks');
  return graph;
}

/** Every file `from` reaches through imports, with the chain that reaches it (for the failure message). */
function reachable(graph: Map<string, string[]>, from: string): Map<string, string[]> {
  const chains = new Map<string, string[]>([[from, [from]]]);
  const queue = [from];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const next of graph.get(file) ?? []) {
      if (chains.has(next)) continue;
      chains.set(next, [...chains.get(file)!, next]);
      queue.push(next);
    }
  }
  return chains;
}

describe('one direction of dependency between constructs/ and stacks/', () => {
  it('public constructs create stacks; stacks import only constructs/private/, which never imports a stack', () => {
    // GIVEN the import graph
    const graph = importGraph();
    // WHEN its direct edges between the directories are listed
    const edges = [...graph].flatMap(([file, imports]) => imports.map((to) => ({ file, to })));
    // THEN no stack imports a public construct, and no private file imports a stack
    expect(edges.filter(({ file, to }) => layerOf(file) === 'stacks' && layerOf(to) === 'constructs')).toEqual([]);
    expect(edges.filter(({ file, to }) => file.startsWith('constructs/private/') && layerOf(to) === 'stacks')).toEqual(
      [],
    );
    // AND the datacenters create their stacks
    const created = edges.filter(({ file, to }) => layerOf(file) === 'constructs' && layerOf(to) === 'stacks');
    expect([...new Set(created.map(({ file }) => file))]).toEqual(
      expect.arrayContaining(['constructs/kubernetes-datacenter.ts', 'constructs/vm-datacenter.ts']),
    );
  });

  it('nothing a stack imports, however indirectly, leads back to a public construct; the README says which way', () => {
    // GIVEN the import graph
    const graph = importGraph();
    // WHEN every file is followed through everything it imports, constructs/private/ included
    const directions = new Set<string>();
    const backwards: string[] = [];
    for (const file of graph.keys()) {
      const from = layerOf(file);
      if (!from) continue;
      for (const [reached, chain] of reachable(graph, file)) {
        const to = layerOf(reached);
        if (!to || to === from) continue;
        directions.add(`${from}/ → ${to}/`);
        if (from === 'stacks') backwards.push(chain.join(' → '));
      }
    }
    // THEN the dependency between the two directories runs one way, and the README's Architecture section names it
    expect(backwards).toEqual([]);
    expect([...directions]).toEqual(['constructs/ → stacks/']);
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const architecture = readme.slice(readme.indexOf('## Architecture'), readme.indexOf('## Development'));
    expect(architecture).toContain('Dependency direction: `constructs/` → `stacks/` → `constructs/private/`.');
  });
});
