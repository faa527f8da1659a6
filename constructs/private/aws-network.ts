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

    const publicRoutes = new RouteTable(this, 'PublicRoutes', {
      vpcId: vpc.id,
      tags: { Name: `${props.name}-public` },
    });
    new Route(this, 'PublicDefaultRoute', {
      routeTableId: publicRoutes.id,
      destinationCidrBlock: '0.0.0.0/0',
      gatewayId: igw.id,
    });

    const publicSubnets = props.availabilityZones.map(
      (zone, i) =>
        new Subnet(this, `Public${i}`, {
          vpcId: vpc.id,
          availabilityZone: zone,
          cidrBlock: formatCidr(cidrSubnet(props.cidr, 4, i)),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${props.name}-public-${zone}`, 'meshform:tier': 'public', ...props.publicSubnetTags },
        }),
    );
    publicSubnets.forEach(
      (subnet, i) =>
        new RouteTableAssociation(this, `PublicAssociation${i}`, {
          subnetId: subnet.id,
          routeTableId: publicRoutes.id,
        }),
    );

    const natAddress = new Eip(this, 'NatAddress', { domain: 'vpc', tags: { Name: `${props.name}-nat` } });
    const nat = new NatGateway(this, 'NatGateway', {
      allocationId: natAddress.id,
      subnetId: publicSubnets[0]!.id,
      tags: { Name: props.name },
      dependsOn: [igw],
    });
    const privateRoutes = new RouteTable(this, 'PrivateRoutes', {
      vpcId: vpc.id,
      tags: { Name: `${props.name}-private` },
    });
    new Route(this, 'PrivateDefaultRoute', {
      routeTableId: privateRoutes.id,
      destinationCidrBlock: '0.0.0.0/0',
      natGatewayId: nat.id,
    });
    const privateSubnets = props.availabilityZones.map(
      (zone, i) =>
        new Subnet(this, `Private${i}`, {
          vpcId: vpc.id,
          availabilityZone: zone,
          cidrBlock: formatCidr(cidrSubnet(props.cidr, 4, 8 + i)),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${props.name}-private-${zone}`, 'meshform:tier': 'private', ...props.privateSubnetTags },
        }),
    );
    privateSubnets.forEach(
      (subnet, i) =>
        new RouteTableAssociation(this, `PrivateAssociation${i}`, {
          subnetId: subnet.id,
          routeTableId: privateRoutes.id,
        }),
    );

    this.publicSubnetIds = publicSubnets.map((s) => s.id);
    this.privateSubnetIds = privateSubnets.map((s) => s.id);
    this.privateRouteTableId = privateRoutes.id;
  }

  /** The private subnets' route table (peering routes go here). */
  public readonly privateRouteTableId: string;
}
