import { describe, expect, it } from 'vitest';
import { EGRESS_TAG } from '../constructs/private/aws-network';
import { defineDefaultMesh } from '../examples/default/main';
import { GatewayExposure, KubernetesCluster, KubernetesDatacenter, Mesh, VmDatacenter } from '../index';
import { awsVmHosts, resources, StackJson, synth } from './support';

/** Each private subnet's route table and the NAT gateway its default route leaves through, by zone. */
function privateEgress(stack: StackJson): { zone: string; nat: string; subnet: string }[] {
  const id = (ref: unknown) => String(ref).replace(/^\$\{aws_[a-z_]+\.([^.]+)\.id\}$/, '$1');
  const subnets = stack.resource!.aws_subnet!;
  const routes = resources(stack, 'aws_route').filter((r) => r.destination_cidr_block === '0.0.0.0/0');
  return resources(stack, 'aws_route_table_association')
    .filter((a) => (subnets[id(a.subnet_id)]!.tags as { [k: string]: string })['meshform:tier'] === 'private')
    .map((a) => {
      const route = routes.find((r) => r.route_table_id === a.route_table_id)!;
      return {
        zone: String(subnets[id(a.subnet_id)]!.availability_zone),
        nat: id(route.nat_gateway_id),
        subnet: id(a.subnet_id),
      };
    });
}

/** Each NAT gateway's zone (from its public subnet). */
function natZones(stack: StackJson): Map<string, string> {
  const subnets = stack.resource!.aws_subnet!;
  return new Map(
    Object.entries(stack.resource!.aws_nat_gateway!).map(([natId, nat]) => [
      natId,
      String(subnets[String(nat.subnet_id).replace(/^\$\{aws_subnet\.([^.]+)\.id\}$/, '$1')]!.availability_zone),
    ]),
  );
}

describe('networks meshform creates', () => {
  const out = synth(defineDefaultMesh);
  const networks = [
    ['VM datacenter', out.stack('shop-aws-vms')],
    ['EKS cluster', out.stack('shop-aws-us-east-infra')],
  ] as const;

  it.each(networks)(
    '%s: one NAT gateway and private route table per zone, so losing a zone cuts no other zone',
    (_, stack) => {
      const egress = privateEgress(stack);
      expect(egress).toHaveLength(3);
      // every private subnet leaves through the NAT gateway of its own zone, each zone its own
      const zones = natZones(stack);
      for (const e of egress) expect(zones.get(e.nat)).toBe(e.zone);
      expect(new Set(egress.map((e) => e.nat)).size).toBe(3);
    },
  );

  it.each(networks)('%s: tags every NAT address meshform:egress = nat and outputs the egress addresses', (_, stack) => {
    const natAllocations = resources(stack, 'aws_nat_gateway').map((n) => n.allocation_id);
    const eips = Object.entries(stack.resource!.aws_eip!).filter(([id]) =>
      natAllocations.includes(`\${aws_eip.${id}.id}`),
    );
    expect(eips).toHaveLength(3);
    for (const [, eip] of eips) expect(eip.tags).toMatchObject({ [EGRESS_TAG.key]: EGRESS_TAG.value });
    expect([...(stack.output!.egress_addresses!.value as string[])].sort()).toEqual(
      eips.map(([id]) => `\${aws_eip.${id}.public_ip}`).sort(),
    );
  });
});

describe('VM gateway outputs', () => {
  /** A VM primary with a declared gateway address, exposed as asked. */
  function gatewayStack(exposure: GatewayExposure): StackJson {
    return synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new VmDatacenter(mesh, 'vms', {
        primary: true,
        meshGateway: { address: 'mgw.vms.example.com', replicas: 1 },
        hosts: awsVmHosts({ gatewayExposure: exposure }),
      });
      new KubernetesDatacenter(mesh, 'k8s', {
        cluster: KubernetesCluster.fromKubeconfig({ context: 'k8s', apiServerUrl: 'https://203.0.113.9' }),
      });
    }).stack('shop-vms');
  }

  it("outputs the load balancer's DNS name, which the declared address's record points at", () => {
    const stack = gatewayStack(GatewayExposure.networkLoadBalancer());
    expect(stack.output!.mesh_gateway_wan_address!.value).toBe('mgw.vms.example.com:443');
    expect(stack.output!.mesh_gateway_record_target).toEqual({
      value: '${aws_lb.GatewayLoadBalancer.dns_name}',
      description:
        "DNS name of the gateway's network load balancer: point mgw.vms.example.com at it (Route 53 alias or CNAME)",
    });
  });

  it('outputs the Elastic IP for a gateway on one', () => {
    const stack = gatewayStack(GatewayExposure.elasticIp());
    expect(stack.output!.mesh_gateway_record_target).toMatchObject({ value: '${aws_eip.GatewayAddress.public_ip}' });
  });
});
