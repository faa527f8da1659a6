import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reconcileMeshCa } from '../cli/ca';
import { REPLICATION_POLICY } from '../constructs/private/acl';
import { parseHcl } from '../constructs/private/hcl';
import { HostRole, KubernetesCluster, KubernetesDatacenter, Mesh, SecretStore, VmDatacenter, VmHosts } from '../index';
import fixture from './fixtures/consul-acl-replication.json';
import { FakeConsul, ownHostRoot, runNode } from './host-support';
import { awsVmHosts, awsVmPrimary, resources, synth, tempDir } from './support';

const NO_PYTHON = spawnSync('python3', ['--version']).error ? 'python3 not found' : undefined;
if (NO_PYTHON) console.warn(`skipping meshform-node ACL tests: ${NO_PYTHON}`);

/** The grants of ACL rules (HCL), flattened to `resource -> access` as the fixture writes them. */
function grants(rules: string): { [resource: string]: string } {
  const out: { [resource: string]: string } = {};
  for (const [key, value] of Object.entries(parseHcl(rules))) {
    if (typeof value === 'string') {
      out[key] = value;
      continue;
    }
    for (const [name, block] of Object.entries(value as { [name: string]: { [k: string]: string } })) {
      for (const [what, access] of Object.entries(block))
        out[`${key} ${JSON.stringify(name)}${what === 'policy' ? '' : ` ${what}`}`] = access;
    }
  }
  return out;
}

interface Delivered {
  tokens: { [name: string]: string };
  acl: {
    policies: { Name: string; Description: string; Rules: string }[];
    tokens: { AccessorID: string; SecretID: string; Description: string; Policies?: { Name: string }[] }[];
  };
}

describe.skipIf(NO_PYTHON)('meshform-node acl-bootstrap (VM servers create and update ACL policies and tokens)', () => {
  let project: { dir: string; outdir: string; storeDir: string };
  let management = '';
  let replication = '';
  let tls: { chainPem: string; keyPem: string };
  let consul: FakeConsul | undefined;

  beforeAll(() => {
    // GIVEN a mesh of two own-hosts datacenters, a primary and a secondary, synthesized and issued
    const dir = tempDir('meshform-project-');
    fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ app: 'true' }));
    const hosts = (prefix: string, net: string) =>
      VmHosts.existing([
        { name: `${prefix}1`, address: `${net}.1`, role: HostRole.SERVER },
        { name: `${prefix}2`, address: `${net}.2`, role: HostRole.SERVER },
        { name: `${prefix}3`, address: `${net}.3`, role: HostRole.SERVER },
        { name: `${prefix}g`, address: `${net}.4`, role: HostRole.MESH_GATEWAY },
      ]);
    const out = synth(
      (app) => {
        const mesh = new Mesh(app, 'lab');
        new VmDatacenter(mesh, 'onprem', {
          primary: true,
          meshGateway: { address: '198.51.100.7' },
          hosts: hosts('s', '10.0.0'),
        });
        new VmDatacenter(mesh, 'edge', { hosts: hosts('e', '10.1.0') });
      },
      path.join(dir, 'cdktf.out'),
    );
    const storeDir = path.join(dir, 'store');
    const store = SecretStore.open({ directory: storeDir });
    ({ aclBootstrapToken: management, aclReplicationToken: replication } = store.ensure('lab').secrets);
    reconcileMeshCa(store, out.mesh('lab'), () => undefined);
    project = { dir, outdir: out.outdir, storeDir };
    tls = store.ca('lab').server('onprem')!;
  }, 600_000);

  afterEach(() => consul?.stop());

  /** A server's root with its delivered secrets, and a fake Consul that grants ACL writes to `token` only. */
  async function server(datacenter: string, host: string, token: string) {
    const root = ownHostRoot(project, 'lab', datacenter, host);
    // as on the host: meshform-secrets.service installs the trust bundle and tokens first
    expect((await runNode(root, ['secrets'])).status).toBe(0);
    consul = new FakeConsul(tls, [token]);
    const address = await consul.start();
    const delivered = JSON.parse(fs.readFileSync(path.join(root, 'etc/meshform/secrets.json'), 'utf8')) as Delivered;
    const bootstrap = () => runNode(root, ['acl-bootstrap'], { MESHFORM_CONSUL_HTTP_ADDR: address });
    return { root, consul, delivered, bootstrap };
  }

  it("creates the replication policy (Consul's documented least privilege) and token on a VM primary, with the management token", async () => {
    // GIVEN a primary server, whose Consul accepts ACL writes from the management token only
    const { consul, delivered, bootstrap } = await server('onprem', 's1', management);
    // WHEN meshform-node bootstraps the ACLs
    const result = await bootstrap();
    // THEN it created the datacenter's policies and the mesh's replication policy, with
    // hashicorp/consul v2.0.3 website/content/docs/secure/acl/token/replication.mdx's grants and nothing more
    expect(result.status, result.stderr).toBe(0);
    const policies = [...consul.policies.values()];
    expect(policies.map((p) => p.Name)).toEqual([
      'meshform-onprem-agent',
      'meshform-onprem-mesh-gateway',
      REPLICATION_POLICY,
    ]);
    expect(grants(policies.find((p) => p.Name === REPLICATION_POLICY)!.Rules)).toEqual(fixture.consul.grants);
    // AND the replication token with the secret id every secondary holds (the store's replication token)
    const token = [...consul.tokens.values()].find((t) => t.Description === 'meshform lab ACL replication token')!;
    expect(token).toMatchObject({ SecretID: replication, Local: false, Policies: [{ Name: REPLICATION_POLICY }] });
    // AND the management token stays on the primary's servers only: their own administration token
    expect(delivered.tokens).toEqual({ agent: expect.any(String), management });
    expect(consul.requests.filter((r) => r.includes('(no token)'))).toEqual([]);
  });

  it('updates a policy whose rules changed and a token whose grants changed, keeping their ids', async () => {
    // GIVEN the ACLs already bootstrapped
    const { root, consul, delivered, bootstrap } = await server('onprem', 's2', management);
    expect((await bootstrap()).status).toBe(0);
    const agentPolicy = [...consul.policies.values()].find((p) => p.Name === 'meshform-onprem-agent')!;
    const created = consul.requests.length;
    // WHEN a later deploy changes a policy's rules and a token's policies (the servers' secret changes)
    delivered.acl.policies[0]!.Rules += 'key_prefix "meshform/" {\n  policy = "read"\n}\n';
    delivered.acl.tokens[1]!.Policies = [{ Name: 'meshform-onprem-agent' }];
    fs.writeFileSync(path.join(root, 'etc/meshform/secrets.json'), JSON.stringify(delivered));
    const result = await bootstrap();
    // THEN the policy is updated in place (same ID) and the token too (same accessor and secret ids)
    expect(result.status, result.stderr).toBe(0);
    const changed = consul.requests.slice(created).filter((r) => r.startsWith('PUT'));
    expect(changed).toEqual([
      `PUT /v1/acl/policy/${agentPolicy.ID}`,
      `PUT /v1/acl/token/${delivered.acl.tokens[1]!.AccessorID}`,
    ]);
    expect(consul.policies.get(agentPolicy.ID)!.Rules).toContain('key_prefix "meshform/"');
    expect(consul.tokens.get(delivered.acl.tokens[1]!.AccessorID)).toMatchObject({
      SecretID: delivered.acl.tokens[1]!.SecretID,
      Policies: [{ Name: 'meshform-onprem-agent' }],
    });
    expect(result.stderr).toContain('meshform-node: updated ACL policy meshform-onprem-agent');
    // AND a run with nothing changed writes nothing
    const before = consul.requests.length;
    expect((await bootstrap()).status).toBe(0);
    expect(consul.requests.slice(before).filter((r) => r.startsWith('PUT'))).toEqual([]);
  });

  it("creates a VM secondary's policies and tokens with the replication token, which never meets the management token", async () => {
    // GIVEN a secondary server, whose Consul accepts ACL writes from the replication token only
    const { root, consul, delivered, bootstrap } = await server('edge', 'e1', replication);
    // WHEN meshform-node bootstraps the ACLs
    const result = await bootstrap();
    // THEN the datacenter's policies and tokens exist, and no replication policy (the primary owns it)
    expect(result.status, result.stderr).toBe(0);
    expect([...consul.policies.values()].map((p) => p.Name)).toEqual([
      'meshform-edge-agent',
      'meshform-edge-mesh-gateway',
    ]);
    expect([...consul.tokens.values()].map((t) => t.Description)).toEqual([
      'meshform lab/edge agent token',
      'meshform lab/edge mesh gateway token',
    ]);
    // AND the servers replicate with it (acl.tokens.replication), and nothing on the host holds the management token
    const agent = JSON.parse(fs.readFileSync(path.join(root, 'etc/consul.d/secrets.json'), 'utf8'));
    expect(agent.acl.tokens).toEqual({ agent: delivered.tokens.agent, replication });
    const everything = [...fs.readdirSync(path.join(root, 'etc/meshform/tokens'))]
      .map((f) => fs.readFileSync(path.join(root, 'etc/meshform/tokens', f), 'utf8'))
      .join('\n');
    expect(`${everything}${JSON.stringify(delivered)}${JSON.stringify(agent)}`).not.toContain(management);
  });
});

describe('replication token rules on a VM primary', () => {
  /** The replication policy a VM primary's servers receive, from its synthesized stack. */
  function replicationPolicy(withKubernetesSecondary: boolean): string {
    const stack = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      awsVmPrimary(mesh);
      if (withKubernetesSecondary)
        new KubernetesDatacenter(mesh, 'k8s', {
          cluster: KubernetesCluster.fromKubeconfig({ context: 'k8s', apiServerUrl: 'https://203.0.113.9' }),
        });
      else new VmDatacenter(mesh, 'edge', { hosts: awsVmHosts() });
    }).stack('shop-vms');
    const locals = (stack as unknown as { locals: { meshform_acl_policies: { Name: string; Rules: string }[] } })
      .locals;
    const server = resources(stack, 'aws_secretsmanager_secret_version').find((v) =>
      String(v.secret_string_wo).includes('"server_key"'),
    )!;
    // the server's secret carries the plan: the replication token with the secondaries' secret id
    expect(server.secret_string_wo).toContain('"SecretID" = var.meshform_shop_acl_replication_token');
    expect(server.secret_string_wo).toContain('"management" = var.meshform_shop_acl_bootstrap_token');
    return locals.meshform_acl_policies.find((p) => p.Name === REPLICATION_POLICY)!.Rules;
  }

  it('grants what Consul documents when every secondary runs on VMs (hashicorp/consul v2.0.3 replication.mdx)', () => {
    expect(grants(replicationPolicy(false))).toEqual(fixture.consul.grants);
  });

  it("grants consul-k8s's replication rules when a Kubernetes secondary uses the token (hashicorp/consul-k8s v2.0.3 server-acl-init/rules.go)", () => {
    expect(grants(replicationPolicy(true))).toEqual(fixture.consulK8s.grants);
  });
});
