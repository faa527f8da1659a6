import { describe, expect, it } from 'vitest';
import type { App } from '../constructs/private/engine';
import {
  AwsVmHostsOptions,
  GatewayExposure,
  KubernetesCluster,
  KubernetesDatacenter,
  Mesh,
  Service,
  VmDatacenter,
  VmDatacenterProps,
  VmNetwork,
} from '../index';
import { awsVmHosts, resources, StackJson, synth } from './support';

/** GIVEN helper: a Kubernetes primary and an AWS VM secondary running `api`, with overridable props. */
function vmMesh(overrides: Partial<VmDatacenterProps> = {}, hostOverrides: Partial<AwsVmHostsOptions> = {}) {
  return (app: App) => {
    const mesh = new Mesh(app, 'shop');
    new KubernetesDatacenter(mesh, 'k8s', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'k8s' }),
      meshGateway: { address: 'mgw.k8s.example.com' },
    });
    const vms = new VmDatacenter(mesh, 'vms', {
      hosts: awsVmHosts(hostOverrides),
      ...overrides,
    });
    new Service(mesh, 'api', { port: 8080, datacenters: [vms] });
  };
}

function vmStack(define = vmMesh()): StackJson {
  return synth(define).stack('shop-vms');
}

type Rule = { [key: string]: unknown };

function ruleResources(stack: StackJson, type: string): Rule[] {
  return resources(stack, type);
}

describe('VM datacenter on EC2: hosts', () => {
  it('creates 3 servers over 3 zones, 2 hosts per service and 2 gateways', () => {
    const stack = vmStack();
    const instances = stack.resource!.aws_instance!;
    const names = Object.values(instances)
      .map((i) => (i.tags as { Name: string }).Name)
      .sort();
    expect(names).toEqual([
      'shop-vms-mesh-gateway-0',
      'shop-vms-mesh-gateway-1',
      'shop-vms-server-0',
      'shop-vms-server-1',
      'shop-vms-server-2',
      'shop-vms-service-api-0',
      'shop-vms-service-api-1',
    ]);
    const servers = Object.values(instances).filter(
      (i) => (i.tags as { [k: string]: string })['meshform:role'] === 'server',
    );
    expect(new Set(servers.map((s) => s.subnet_id)).size).toBe(3);
    for (const s of servers) expect(s.tags).toMatchObject({ 'meshform-join': 'shop-vms' });
  });

  it('requires IMDSv2 with hop limit 1 on every host', () => {
    for (const instance of resources(vmStack(), 'aws_instance')) {
      expect(instance.metadata_options).toEqual({
        http_endpoint: 'enabled',
        http_tokens: 'required',
        http_put_response_hop_limit: 1,
        instance_metadata_tags: 'disabled',
      });
    }
  });

  it('encrypts every root volume', () => {
    for (const instance of resources(vmStack(), 'aws_instance')) {
      expect(instance.root_block_device).toEqual({
        encrypted: true,
        volume_type: 'gp3',
        volume_size: 30,
        delete_on_termination: true,
      });
    }
  });

  it('gives no host a public IP, and keeps servers and clients in private subnets', () => {
    const stack = vmStack();
    for (const instance of resources(stack, 'aws_instance')) expect(instance.associate_public_ip_address).toBe(false);
    const privateSubnets = Object.entries(stack.resource!.aws_subnet!)
      .filter(([, s]) => (s.tags as { [k: string]: string })['meshform:tier'] === 'private')
      .map(([id]) => `\${aws_subnet.${id}.id}`);
    for (const instance of resources(stack, 'aws_instance')) expect(privateSubnets).toContain(instance.subnet_id);
    for (const subnet of resources(stack, 'aws_subnet')) expect(subnet.map_public_ip_on_launch).toBe(false);
  });

  it('boots hosts from gzipped cloud-init held in a local, replaced on change, with no secret or variable in it', () => {
    const stack = vmStack();
    for (const instance of resources(stack, 'aws_instance')) {
      expect(instance.user_data_base64).toMatch(/^\$\{base64gzip\(local\.cloud_init_[a-z_]+\)\}$/);
      expect(instance.user_data_replace_on_change).toBe(true);
    }
    const locals = (stack as unknown as { locals: { [name: string]: unknown } }).locals;
    const documents = Object.entries(locals).filter(([name]) => name.startsWith('cloud_init_'));
    expect(documents.map(([name]) => name).sort()).toEqual([
      'cloud_init_mesh_gateway',
      'cloud_init_server',
      'cloud_init_service_api',
    ]);
    for (const [, doc] of documents) {
      expect(doc).toMatch(/^#cloud-config\n/);
      expect(doc).not.toContain('var.');
      expect(doc).not.toMatch(/PRIVATE KEY/);
    }
  });
});

describe('VM datacenter on EC2: network security', () => {
  it('describes every security group rule', () => {
    const stack = vmStack();
    const rules = [
      ...ruleResources(stack, 'aws_vpc_security_group_ingress_rule'),
      ...ruleResources(stack, 'aws_vpc_security_group_egress_rule'),
    ];
    expect(rules.length).toBeGreaterThan(40);
    for (const rule of rules) expect(String(rule.description ?? '')).not.toBe('');
    for (const sg of resources(stack, 'aws_security_group')) {
      expect(sg.ingress).toBeUndefined();
      expect(sg.egress).toBeUndefined();
    }
  });

  it('admits traffic only from the mesh groups and the VPC when the gateway is internal (the default)', () => {
    const stack = vmStack();
    for (const rule of ruleResources(stack, 'aws_vpc_security_group_ingress_rule')) {
      if (rule.cidr_ipv4 !== undefined) {
        // the gateway port (load balancer health checks) and the Envoy metrics port (a Prometheus in the VPC)
        expect([
          { cidr_ipv4: '10.20.0.0/16', from_port: 8443, to_port: 8443, ip_protocol: 'tcp' },
          { cidr_ipv4: '10.20.0.0/16', from_port: 20200, to_port: 20200, ip_protocol: 'tcp' },
        ]).toContainEqual({
          cidr_ipv4: rule.cidr_ipv4,
          from_port: rule.from_port,
          to_port: rule.to_port,
          ip_protocol: rule.ip_protocol,
        });
      } else {
        expect(String(rule.referenced_security_group_id)).toMatch(
          /^\$\{aws_security_group\.(server|client|gateway)SecurityGroup\.id\}$/,
        );
      }
    }
    expect(resources(stack, 'aws_lb')[0]).toMatchObject({ internal: true, load_balancer_type: 'network' });
  });

  it('opens only the gateway port to the internet, and only when asked to', () => {
    const stack = vmStack(
      vmMesh(
        {},
        { gatewayExposure: GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: ['0.0.0.0/0'] }) },
      ),
    );
    const open = ruleResources(stack, 'aws_vpc_security_group_ingress_rule').filter((r) => r.cidr_ipv4 === '0.0.0.0/0');
    expect(open).toEqual([
      expect.objectContaining({
        from_port: 8443,
        to_port: 8443,
        ip_protocol: 'tcp',
        description: 'mesh gateway port from a source the datacenter allows (other datacenters)',
      }),
    ]);
    expect(String(open[0]!.security_group_id)).toContain('gatewaySecurityGroup');
    expect(resources(stack, 'aws_lb')[0]).toMatchObject({ internal: false });
  });

  it('lets hosts out only on HTTPS, besides the mesh groups', () => {
    const stack = vmStack();
    const toWorld = ruleResources(stack, 'aws_vpc_security_group_egress_rule').filter((r) => r.cidr_ipv4 !== undefined);
    expect(toWorld.map((r) => [r.cidr_ipv4, r.from_port, r.to_port])).toEqual([
      ['0.0.0.0/0', 443, 443],
      ['0.0.0.0/0', 443, 443],
      ['0.0.0.0/0', 443, 443],
    ]);
  });

  it("lets servers and gateways out to the primary's declared gateway address and port only", () => {
    const stack = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new KubernetesDatacenter(mesh, 'k8s', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'k8s' }),
        meshGateway: { address: '198.51.100.1', port: 8443 },
      });
      new VmDatacenter(mesh, 'vms', {
        hosts: awsVmHosts(),
      });
    }).stack('shop-vms');
    const extra = ruleResources(stack, 'aws_vpc_security_group_egress_rule').filter(
      (r) => r.from_port === 8443 && r.cidr_ipv4 !== undefined,
    );
    expect(
      extra.map((r) => [String(r.security_group_id).match(/(server|gateway|client)SecurityGroup/)![1], r.cidr_ipv4]),
    ).toEqual([
      ['gateway', '198.51.100.1/32'],
      ['server', '198.51.100.1/32'],
    ]);
    expect(extra[0]!.description).toBe('mesh gateway of k8s (198.51.100.1) on port 8443');
  });
});

describe('VM datacenter on EC2: identity and secrets', () => {
  it('gives each host group a role that may read only its own secret (and describe instances for auto-join)', () => {
    const stack = vmStack();
    const policies = resources(stack, 'aws_iam_role_policy');
    expect(policies).toHaveLength(3);
    for (const policy of policies) {
      const group = String(policy.role).match(/aws_iam_role\.Role-([a-z-]+)\.id/)![1];
      const secret = Object.keys(stack.resource!.aws_secretsmanager_secret!).find((k) => k === `Secret-${group}`)!;
      expect(policy.policy).toBe(
        '${jsonencode({"Version" = "2012-10-17", "Statement" = [{"Sid" = "CloudAutoJoin", "Effect" = "Allow", "Action" = ["ec2:DescribeInstances"], "Resource" = "*"}, ' +
          `{"Sid" = "ReadOwnSecrets", "Effect" = "Allow", "Action" = ["secretsmanager:GetSecretValue"], "Resource" = aws_secretsmanager_secret.${secret}.arn}]})}`,
      );
    }
    for (const role of resources(stack, 'aws_iam_role')) {
      expect(role.assume_role_policy).toBe(
        '${jsonencode({"Version" = "2012-10-17", "Statement" = [{"Effect" = "Allow", "Principal" = {"Service" = "ec2.amazonaws.com"}, "Action" = ["sts:AssumeRole"]}]})}',
      );
    }
  });

  it('keeps one Secrets Manager entry per host group, filled from the sensitive variables', () => {
    const stack = vmStack();
    expect(
      resources(stack, 'aws_secretsmanager_secret')
        .map((s) => s.name)
        .sort(),
    ).toEqual(['meshform/shop/vms/mesh-gateway', 'meshform/shop/vms/server', 'meshform/shop/vms/service-api']);
    const versions = stack.resource!.aws_secretsmanager_secret_version!;
    const server = Object.entries(versions).find(([k]) => k.startsWith('SecretValue-server'))![1];
    // write-only: the document never reaches Terraform's plan or state
    expect(server.secret_string).toBeUndefined();
    expect(server.secret_string_wo).toContain('"ca_bundle" = var.meshform_shop_vms_ca_bundle');
    expect(server.secret_string_wo).toContain('"server_cert" = var.meshform_shop_vms_server_cert');
    expect(server.secret_string_wo).toContain('"server_key" = var.meshform_shop_vms_server_key');
    // a secondary's servers administer ACLs with the replication token; the management token never reaches it
    expect(server.secret_string_wo).toContain('"replication" = var.meshform_shop_acl_replication_token');
    expect(server.secret_string_wo).not.toContain('"management"');
    expect(JSON.stringify(stack)).not.toContain('acl_bootstrap_token');
    const client = Object.entries(versions).find(([k]) => k.startsWith('SecretValue-service-api'))![1];
    expect(client.secret_string_wo).toContain('"ca_bundle" = var.meshform_shop_vms_ca_bundle');
    expect(client.secret_string_wo).not.toContain('server_key');
    expect(client.secret_string_wo).not.toContain('"management"');
    expect(client.secret_string_wo).toContain('"service-api" = local.meshform_secret_service_vms_api');
  });
});

describe('VM datacenter on EC2: mesh gateway', () => {
  it('puts the gateways behind a network load balancer on the gateway port', () => {
    const stack = vmStack();
    expect(resources(stack, 'aws_lb_listener')).toEqual([expect.objectContaining({ port: 443, protocol: 'TCP' })]);
    expect(resources(stack, 'aws_lb_target_group')).toEqual([
      expect.objectContaining({ port: 8443, protocol: 'TCP', target_type: 'instance', preserve_client_ip: 'true' }),
    ]);
    expect(resources(stack, 'aws_lb_target_group_attachment')).toHaveLength(2);
    expect(stack.output!.mesh_gateway_wan_address).toMatchObject({
      value: '${aws_lb.GatewayLoadBalancer.dns_name}:443',
    });
  });

  it('publishes a declared address as an alias of the load balancer', () => {
    const stack = vmStack(
      vmMesh(
        { meshGateway: { address: 'mgw.vms.example.com' } },
        { gatewayExposure: GatewayExposure.networkLoadBalancer({ hostedZoneId: 'Z1EXAMPLE' }) },
      ),
    );
    expect(resources(stack, 'aws_route53_record')).toEqual([
      expect.objectContaining({
        zone_id: 'Z1EXAMPLE',
        name: 'mgw.vms.example.com',
        type: 'A',
        alias: {
          name: '${aws_lb.GatewayLoadBalancer.dns_name}',
          zone_id: '${aws_lb.GatewayLoadBalancer.zone_id}',
          evaluate_target_health: true,
        },
      }),
    ]);
  });

  it('can put a single gateway on an Elastic IP in a public subnet', () => {
    const stack = vmStack(vmMesh({ meshGateway: { replicas: 1 } }, { gatewayExposure: GatewayExposure.elasticIp() }));
    expect(resources(stack, 'aws_lb')).toEqual([]);
    expect(resources(stack, 'aws_eip_association')).toHaveLength(1);
    const gateway = Object.values(stack.resource!.aws_instance!).find(
      (i) => (i.tags as { [k: string]: string })['meshform:role'] === 'mesh-gateway',
    )!;
    expect(gateway.associate_public_ip_address).toBe(false);
    expect(String(gateway.subnet_id)).toContain('Network_Public0');
  });
});

describe('VM datacenter on EC2: networks', () => {
  it('uses an existing VPC without creating one', () => {
    const stack = vmStack(
      vmMesh(
        {},
        {
          network: VmNetwork.existingVpc({
            vpcId: 'vpc-0abc0abc0abc0abc0',
            vpcCidr: '172.16.0.0/16',
            privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
          }),
        },
      ),
    );
    expect(resources(stack, 'aws_vpc')).toEqual([]);
    expect(resources(stack, 'aws_security_group').map((s) => s.vpc_id)).toEqual([
      'vpc-0abc0abc0abc0abc0',
      'vpc-0abc0abc0abc0abc0',
      'vpc-0abc0abc0abc0abc0',
    ]);
    expect(new Set(resources(stack, 'aws_instance').map((i) => i.subnet_id))).toEqual(
      new Set(['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2']),
    );
  });

  it('peers two VM datacenters of a region, the peering in the later stack, looked up by tags', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      const a = new VmDatacenter(mesh, 'a', {
        primary: true,
        meshGateway: { address: 'mgw.a.example.com' },
        hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr: '10.1.0.0/16' }) }),
      });
      const b = new VmDatacenter(mesh, 'b', {
        hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr: '10.2.0.0/16' }) }),
      });
      a.peerWith(b);
    });
    expect(resources(out.stack('shop-a'), 'aws_vpc_peering_connection')).toEqual([]);
    expect(resources(out.stack('shop-b'), 'aws_vpc_peering_connection')).toEqual([
      expect.objectContaining({ auto_accept: true, peer_vpc_id: '${data.aws_vpc.PeerVpc-shop-a.id}' }),
    ]);
    expect(out.stack('shop-b').data!.aws_vpc!['PeerVpc-shop-a']).toMatchObject({
      tags: { 'meshform:mesh': 'shop', 'meshform:datacenter': 'a' },
    });
    // both ways, into every private route table (one per zone on each side)
    const peering = resources(out.stack('shop-b'), 'aws_route').filter((r) => r.vpc_peering_connection_id);
    const tables = peering.map((r) => String(r.route_table_id).replace(/_[0-9A-F]{8}\.id/, '.id'));
    expect(tables.sort()).toEqual([
      '${aws_route_table.Network_PrivateRoutes.id}',
      '${aws_route_table.Network_PrivateRoutes1.id}',
      '${aws_route_table.Network_PrivateRoutes2.id}',
      '${element(sort(data.aws_route_tables.PeerRouteTables-shop-a.ids), 0)}',
      '${element(sort(data.aws_route_tables.PeerRouteTables-shop-a.ids), 1)}',
      '${element(sort(data.aws_route_tables.PeerRouteTables-shop-a.ids), 2)}',
    ]);
    // the peer's private route tables are found by the tier tag meshform puts on them
    expect(out.stack('shop-b').data!.aws_route_tables!['PeerRouteTables-shop-a']).toMatchObject({
      tags: { 'meshform:mesh': 'shop', 'meshform:datacenter': 'a', 'meshform:tier': 'private' },
    });
    for (const table of resources(out.stack('shop-a'), 'aws_route_table').filter((t) =>
      String((t.tags as { Name: string }).Name).includes('-private-'),
    ))
      expect(table.tags).toMatchObject({ 'meshform:tier': 'private' });
    expect(out.manifest.stacks['shop-b']!.dependencies).toEqual(['shop-a']);
    // the primary's gateway accepts the peer's block
    expect(ruleResources(out.stack('shop-a'), 'aws_vpc_security_group_ingress_rule').map((r) => r.cidr_ipv4)).toContain(
      '10.2.0.0/16',
    );
  });
});
