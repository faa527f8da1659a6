import { describe, expect, it } from 'vitest';
import { GatewayExposure, MachineImage, Service, VmDatacenter, VmDatacenterProps, VmNetwork } from '../index';
import { awsVmHosts, kubernetesPrimary, synth, thrownMessage } from './support';

function vmError(props: Partial<VmDatacenterProps>): string {
  return thrownMessage(() =>
    synth((app) => new VmDatacenter(kubernetesPrimary(app), 'vms', { hosts: awsVmHosts(), ...props })),
  );
}

describe('VM datacenter validation', () => {
  it.each([
    [
      '10.20.0.0',
      '[m/vms] VPC CIDR is not an IPv4 CIDR block: "10.20.0.0". Fix: write it as a.b.c.d/prefix, e.g. "10.20.0.0/16"',
    ],
    [
      '10.300.0.0/16',
      '[m/vms] VPC CIDR is not an IPv4 CIDR block: "10.300.0.0/16". Fix: write it as a.b.c.d/prefix, e.g. "10.20.0.0/16"',
    ],
    ['10.20.1.0/16', '[m/vms] VPC CIDR has host bits set: "10.20.1.0/16". Fix: use the network address "10.20.0.0/16"'],
    [
      '10.0.0.0/8',
      '[m/vms] VPC CIDR has a prefix outside /16-/24: "10.0.0.0/8". Fix: use a block from /16 to /24, so that every zone gets a public and a private subnet',
    ],
  ])('rejects the VPC CIDR %s', (cidr, message) => {
    expect(vmError({ hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr }) }) })).toBe(message);
  });

  it('rejects overlapping CIDRs of peered datacenters', () => {
    expect(
      thrownMessage(() =>
        synth((app) => {
          const mesh = kubernetesPrimary(app);
          const a = new VmDatacenter(mesh, 'a', {
            hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }) }),
          });
          const b = new VmDatacenter(mesh, 'b', {
            hosts: awsVmHosts({ network: VmNetwork.newVpc({ cidr: '10.20.128.0/17' }) }),
          });
          a.peerWith(b);
        }),
      ),
    ).toBe(
      '[m/a] VPC CIDR overlaps 10.20.128.0/17 of the peered datacenter m/b: "10.20.0.0/16". ' +
        'Fix: give peered datacenters disjoint VPC CIDRs (e.g. 10.20.0.0/16 and 10.30.0.0/16)',
    );
  });

  it('accepts overlapping CIDRs of datacenters that are not peered (they meet through gateways only)', () => {
    const out = synth((app) => {
      const mesh = kubernetesPrimary(app);
      new VmDatacenter(mesh, 'a', { hosts: awsVmHosts() });
      new VmDatacenter(mesh, 'b', { hosts: awsVmHosts() });
    });
    expect(out.stackNames()).toContain('m-b');
  });

  it('rejects peering across regions', () => {
    expect(
      thrownMessage(() =>
        synth((app) => {
          const mesh = kubernetesPrimary(app);
          const a = new VmDatacenter(mesh, 'a', { hosts: awsVmHosts() });
          const b = new VmDatacenter(mesh, 'b', {
            hosts: awsVmHosts({ region: 'us-east-1', network: VmNetwork.newVpc({ cidr: '10.30.0.0/16' }) }),
          });
          a.peerWith(b);
        }),
      ),
    ).toBe(
      '[m/a] peering with m/b needs both VPCs in one AWS region: "m/b". Fix: peer datacenters of the same region (connect others with transit or mesh gateways)',
    );
  });

  it.each([1, 4])('rejects %s servers', (servers) => {
    expect(vmError({ servers })).toBe(
      `[m/vms] Consul server count must be one of 3, 5: ${servers}. Fix: use 3 or 5 servers`,
    );
  });

  it('rejects a missing machine image (no default applies) and a malformed one', () => {
    expect(vmError({ hosts: awsVmHosts({ machineImage: undefined as unknown as MachineImage }) })).toBe(
      '[m/vms] AWS hosts need a machine image and there is no default (AMI ids differ per region): (not set). ' +
        'Fix: set `machineImage: MachineImage.fromId("ami-...")` (a Debian 12 or similar AMI of your region) or `MachineImage.debian12()`',
    );
    expect(vmError({ hosts: awsVmHosts({ machineImage: MachineImage.fromId('debian') }) })).toBe(
      '[m/vms] machine image id is not an AMI id: "debian". Fix: give an id such as "ami-0123456789abcdef0"',
    );
  });

  it('rejects an empty or malformed instance type', () => {
    expect(vmError({ hosts: awsVmHosts({ serverInstanceType: '' }) })).toBe(
      '[m/vms] serverInstanceType is not an EC2 instance type: "". Fix: give a type such as "m6i.large"',
    );
    expect(vmError({ hosts: awsVmHosts({ clientInstanceType: 'large' }) })).toBe(
      '[m/vms] clientInstanceType is not an EC2 instance type: "large". Fix: give a type such as "m6i.large"',
    );
  });

  it('rejects a service without a port', () => {
    expect(
      thrownMessage(() =>
        synth((app) => new Service(kubernetesPrimary(app), 'api', { port: undefined as unknown as number })),
      ),
    ).toBe(
      '[m/api] service "api" has no valid port: (not set). Fix: set `port` to the port the service listens on (1 to 65535)',
    );
    expect(thrownMessage(() => synth((app) => new Service(kubernetesPrimary(app), 'api', { port: 0 })))).toBe(
      '[m/api] service "api" has no valid port: 0. Fix: set `port` to the port the service listens on (1 to 65535)',
    );
  });

  it('rejects an Envoy version without a verified checksum, and arm64 hosts without one', () => {
    expect(vmError({ envoyVersion: '1.99.0' })).toBe(
      '[m/vms] meshform has no verified checksum of Envoy for linux/amd64 at this version: "1.99.0". Fix: use one of "1.38.0", "1.38.2", "1.38.4"',
    );
    expect(vmError({ hosts: awsVmHosts({ clientInstanceType: 'm7g.large' }) })).toBe(
      '[m/vms] meshform has no verified checksum of Envoy for linux/arm64 at this version: "1.38.4". ' +
        'Fix: use x86_64 (amd64) instance types, or a binary mirror with your own verified build',
    );
  });

  it('exposes the gateway to the internet only with explicit sources', () => {
    expect(
      vmError({
        hosts: awsVmHosts({ gatewayExposure: GatewayExposure.networkLoadBalancer({ internetFacing: true }) }),
      }),
    ).toBe(
      '[m/vms] an internet-facing gateway load balancer needs the sources it admits: []. ' +
        'Fix: set `allowedCidrs` (e.g. the other datacenters\' egress addresses, or ["0.0.0.0/0"] if you decide so)',
    );
    expect(vmError({ hosts: awsVmHosts({ gatewayExposure: GatewayExposure.elasticIp() }) })).toBe(
      '[m/vms] an Elastic IP gateway is one instance on one address: 2. ' +
        'Fix: set `meshGateway.replicas: 1`, or use GatewayExposure.networkLoadBalancer() for several gateways behind one address',
    );
  });

  it('rejects a public gateway in an existing VPC without public subnets', () => {
    expect(
      vmError({
        meshGateway: { replicas: 1 },
        hosts: awsVmHosts({
          network: VmNetwork.existingVpc({
            vpcId: 'vpc-0123456789abcdef0',
            vpcCidr: '10.9.0.0/16',
            privateSubnetIds: ['subnet-0123456789abcdef0'],
          }),
          gatewayExposure: GatewayExposure.elasticIp(),
        }),
      }),
    ).toBe(
      '[m/vms] an internet-facing or Elastic IP gateway needs public subnets, and the existing VPC lists none: []. ' +
        'Fix: set `publicSubnetIds` of VmNetwork.existingVpc({...})',
    );
  });
});
