import { Eip } from '@cdktf/provider-aws/lib/eip';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway';
import { Route } from '@cdktf/provider-aws/lib/route';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association';
import { Subnet } from '@cdktf/provider-aws/lib/subnet';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { Construct } from 'constructs';
import { Cidr, cidrSubnet, formatCidr } from './cidr';

/** What a new VPC is made of. */
export interface AwsNetworkProps {
  /** Name prefix of every resource. */
  readonly name: string;
  /** The VPC block (already validated). */
  readonly cidr: Cidr;
  /** Zones: one public and one private subnet each. */
  readonly availabilityZones: readonly string[];
  /** Extra tags of public subnets (e.g. for Kubernetes load balancers). */
  readonly publicSubnetTags?: { readonly [key: string]: string };
  /** Extra tags of private subnets. */
  readonly privateSubnetTags?: { readonly [key: string]: string };
}

/** The network a datacenter's hosts use, whether meshform created it or not. */
export interface NetworkRef {
  readonly vpcId: string;
  readonly vpcCidr: string;
  readonly privateSubnetIds: readonly string[];
  readonly publicSubnetIds: readonly string[];
}

/**
 * A new VPC: a public and a private subnet per zone (the block is split in 16; public subnets take the first
 * slices, private ones the slices from 8 on), an internet gateway for the public subnets and one NAT gateway
 * through which the private subnets reach the internet (HTTPS only, as the security groups allow).
 */
export class AwsNetwork extends Construct implements NetworkRef {
  public readonly vpcId: string;
  public readonly vpcCidr: string;
  public readonly privateSubnetIds: string[];
  public readonly publicSubnetIds: string[];

  constructor(scope: Construct, id: string, props: AwsNetworkProps) {
    super(scope, id);
    const vpc = new Vpc(this, 'Vpc', {
      cidrBlock: formatCidr(props.cidr),
      enableDnsHostnames: true,
      enableDnsSupport: true,
      tags: { Name: props.name },
    });
    this.vpcId = vpc.id;
    this.vpcCidr = formatCidr(props.cidr);
    const igw = new InternetGateway(this, 'InternetGateway', { vpcId: vpc.id, tags: { Name: props.name } });

    const publicTier = this.tier(props, 'public', 0, { gatewayId: igw.id }, props.publicSubnetTags);

    const natAddress = new Eip(this, 'NatAddress', {
      domain: 'vpc',
      tags: { Name: `${props.name}-nat`, 'meshform:egress': 'nat' },
    });
    const nat = new NatGateway(this, 'NatGateway', {
      allocationId: natAddress.id,
      subnetId: publicTier.subnets[0]!.id,
      tags: { Name: props.name },
      dependsOn: [igw],
    });
    const privateTier = this.tier(props, 'private', 8, { natGatewayId: nat.id }, props.privateSubnetTags);

    this.publicSubnetIds = publicTier.subnets.map((s) => s.id);
    this.privateSubnetIds = privateTier.subnets.map((s) => s.id);
    this.privateRouteTableId = privateTier.routes.id;
  }

  /**
   * One tier: a subnet per zone from the block's slices `firstSlice`, `firstSlice + 1`, ..., and a route table
   * whose default route leaves through `target` (the internet gateway or the NAT gateway).
   */
  private tier(
    props: AwsNetworkProps,
    tier: 'public' | 'private',
    firstSlice: number,
    target: { readonly gatewayId: string } | { readonly natGatewayId: string },
    extraTags: { readonly [key: string]: string } | undefined,
  ): { routes: RouteTable; subnets: Subnet[] } {
    const prefix = tier === 'public' ? 'Public' : 'Private';
    const routes = new RouteTable(this, `${prefix}Routes`, {
      vpcId: this.vpcId,
      tags: { Name: `${props.name}-${tier}` },
    });
    new Route(this, `${prefix}DefaultRoute`, {
      routeTableId: routes.id,
      destinationCidrBlock: '0.0.0.0/0',
      ...target,
    });
    const subnets = props.availabilityZones.map(
      (zone, i) =>
        new Subnet(this, `${prefix}${i}`, {
          vpcId: this.vpcId,
          availabilityZone: zone,
          cidrBlock: formatCidr(cidrSubnet(props.cidr, 4, firstSlice + i)),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${props.name}-${tier}-${zone}`, 'meshform:tier': tier, ...extraTags },
        }),
    );
    subnets.forEach(
      (subnet, i) =>
        new RouteTableAssociation(this, `${prefix}Association${i}`, { subnetId: subnet.id, routeTableId: routes.id }),
    );
    return { routes, subnets };
  }

  /** The private subnets' route table (peering routes go here). */
  public readonly privateRouteTableId: string;
}
